/* Tocsin's only script besides htmx: copy buttons and a notice when a request fails.
   Everything works without it; it only adds comfort. */
(function () {
  "use strict";

  function announce(text) {
    var region = document.getElementById("live-status");
    if (region) { region.textContent = text; }
  }

  function copyWithSelection(text) {
    // Fallback for plain-http deployments, where navigator.clipboard does not exist.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () { return copyWithSelection(text); });
    }
    return copyWithSelection(text);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    copy(source.textContent.trim()).then(function () {
      button.textContent = "Copied";
      announce("Copied to the clipboard.");
    }, function () {
      button.textContent = "Select and copy by hand";
      announce("Could not copy; select the text and copy it by hand.");
    }).then(function () {
      window.setTimeout(function () { button.textContent = label; }, 2000);
    });
  });

  function showProblem(text) {
    var notice = document.getElementById("request-problem");
    if (!notice) { return; }
    notice.textContent = text;
    notice.hidden = !text;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var reason = "The server answered " + xhr.status + ".";
    var type = xhr.getResponseHeader("Content-Type") || "";
    var text = (xhr.responseText || "").trim();
    if (/^text\/plain/.test(type) && text && text.length <= 200) {
      // Our own refusals of bad input are one short plain-text line that says why.
      reason = text;
    }
    if (xhr.status === 403) {
      // Django's CSRF refusal says "CSRF"; it happens when a login elsewhere rotated the token.
      reason = /CSRF/.test(xhr.responseText || "")
        ? "This page is out of date; reload it and try again."
        : "You are not allowed to do that.";
    }
    showProblem("That request failed: " + reason);
  });
  document.addEventListener("htmx:sendError", function () {
    showProblem("Cannot reach Tocsin right now; what you see may be out of date. Retrying.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) { showProblem(""); }
  });

  // Polled regions carry data-status-summary: one short sentence about their state. Screen
  // readers hear it through the polite #live-status region only when it changes, never on a
  // poll that changed nothing (the regions themselves are not live: a whole table re-read
  // every few seconds would drown everything else).
  var summaries = {};
  function noteSummaries(announceChanges) {
    document.querySelectorAll("[data-status-summary]").forEach(function (region) {
      var text = region.getAttribute("data-status-summary");
      var seen = Object.prototype.hasOwnProperty.call(summaries, region.id);
      if (announceChanges && seen && summaries[region.id] !== text) { announce(text); }
      summaries[region.id] = text;
    });
  }
  document.addEventListener("DOMContentLoaded", function () { noteSummaries(false); });
  document.addEventListener("htmx:afterSettle", function () { noteSummaries(true); });

  // Copy buttons are useless without this script, so they start hidden.
  function revealCopyButtons() {
    document.querySelectorAll("button[data-copy][hidden]").forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", revealCopyButtons);
  document.addEventListener("htmx:afterSettle", revealCopyButtons);
})();
