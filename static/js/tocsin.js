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
      // Our 403 page says why in #error-reason ("This needs the member role or higher.").
      var said = "";
      try {
        var doc = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
        var node = doc.getElementById("error-reason");
        said = node ? node.textContent.trim() : "";
      } catch (e) { said = ""; }
      reason = /CSRF/.test(xhr.responseText || "")
        ? "This page is out of date; reload it and try again."
        : "You are not allowed to do that." + (said ? " " + said : "");
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

  // A rotation's members in shift order (escalation/widgets/ordered_members.html): the order
  // of the hidden inputs is what the form posts, so moving a row moves its place in line.
  function memberRow(list, userId, label) {
    var row = document.createElement("li");
    row.setAttribute("data-member", userId);
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = list.closest("[data-ordered-members]").querySelector("select").name;
    input.value = userId;
    var name = document.createElement("span");
    name.className = "member-name";
    name.textContent = label;
    var actions = document.createElement("span");
    actions.className = "member-actions";
    [["up", "Up", "Move " + label + " earlier"], ["down", "Down", "Move " + label + " later"],
     ["remove", "Remove", "Remove " + label + " from the rotation"]].forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "button secondary small" + (spec[0] === "remove" ? " danger" : "");
      button.setAttribute("data-member-move", spec[0]);
      button.setAttribute("aria-label", spec[2]);
      button.textContent = spec[1];
      actions.appendChild(button);
      actions.appendChild(document.createTextNode(" "));
    });
    row.appendChild(input);
    row.appendChild(name);
    row.appendChild(document.createTextNode(" "));
    row.appendChild(actions);
    return row;
  }

  document.addEventListener("click", function (event) {
    var move = event.target.closest("button[data-member-move]");
    if (move) {
      var row = move.closest("li");
      var list = row.parentNode;
      var label = row.querySelector(".member-name").textContent;
      var how = move.getAttribute("data-member-move");
      if (how === "up" && row.previousElementSibling) {
        list.insertBefore(row, row.previousElementSibling);
        announce(label + " moved earlier.");
      } else if (how === "down" && row.nextElementSibling) {
        list.insertBefore(row.nextElementSibling, row);
        announce(label + " moved later.");
      } else if (how === "remove") {
        var next = row.nextElementSibling || row.previousElementSibling;
        list.removeChild(row);
        announce(label + " removed.");
        if (next) { next.querySelector("button").focus(); }
        return;
      }
      move.focus();
      return;
    }
    var add = event.target.closest("button[data-member-add]");
    if (add) {
      var box = add.closest("[data-ordered-members]");
      var select = box.querySelector("select");
      var option = select.options[select.selectedIndex];
      if (!select.value) { announce("Choose a member to add."); return; }
      var order = box.querySelector("ol");
      if (order.querySelector('li[data-member="' + select.value + '"]')) {
        announce(option.textContent + " is already in the rotation.");
        return;
      }
      order.appendChild(memberRow(order, select.value, option.textContent));
      announce(option.textContent + " added at the end.");
      select.value = "";
    }
  });

  // Copy and member buttons are useless without this script, so they start hidden.
  function revealCopyButtons() {
    document.querySelectorAll("button[data-copy][hidden], button[data-member-move][hidden], button[data-member-add][hidden]").forEach(function (b) { b.hidden = false; });
  }
  document.addEventListener("DOMContentLoaded", revealCopyButtons);
  document.addEventListener("htmx:afterSettle", revealCopyButtons);

  // The browser's own time zone, for pages of a reader who has not chosen one on the account
  // page: the server reads this cookie (apps/dashboard/display_zone.py). A change of zone
  // (travel) shows from the next page on.
  (function rememberZone() {
    var zone = "";
    try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { zone = ""; }
    // IANA names need no encoding (letters, digits, "/", "_", "+", "-"), and the server reads
    // the cookie as it is; anything else is not a zone name.
    if (!/^[A-Za-z0-9_\/+\-]{1,64}$/.test(zone)) { return; }
    var current = (document.cookie.match(/(?:^|; )tocsin_tz=([^;]*)/) || [])[1];
    if (current !== zone) {
      document.cookie = "tocsin_tz=" + zone + "; path=/; max-age=31536000; SameSite=Lax";
    }
  })();

  // Tabs: a [data-tabs] section with a hidden role=tablist shows one panel at a time once this
  // script runs; without it every panel stays visible.
  function selectTab(tab, focus) {
    var list = tab.closest("[role=tablist]");
    list.querySelectorAll("[role=tab]").forEach(function (other) {
      var selected = other === tab;
      other.setAttribute("aria-selected", selected ? "true" : "false");
      other.tabIndex = selected ? 0 : -1;
      var panel = document.getElementById(other.getAttribute("aria-controls"));
      if (panel) { panel.hidden = !selected; }
    });
    if (focus) { tab.focus(); }
  }
  function setUpTabs() {
    document.querySelectorAll("[data-tabs] [role=tablist][hidden]").forEach(function (list) {
      list.hidden = false;
      var selected = list.querySelector("[role=tab][aria-selected=true]") || list.querySelector("[role=tab]");
      if (selected) { selectTab(selected, false); }
    });
  }
  document.addEventListener("click", function (event) {
    var tab = event.target.closest("[role=tab]");
    if (tab) { selectTab(tab, false); }
  });
  document.addEventListener("keydown", function (event) {
    var tab = event.target.closest && event.target.closest("[role=tab]");
    if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) { return; }
    var tabs = Array.prototype.slice.call(tab.closest("[role=tablist]").querySelectorAll("[role=tab]"));
    var step = event.key === "ArrowRight" ? 1 : -1;
    selectTab(tabs[(tabs.indexOf(tab) + step + tabs.length) % tabs.length], true);
    event.preventDefault();
  });
  document.addEventListener("DOMContentLoaded", setUpTabs);

  // The check form shows the schedule fields of the chosen kind only ([data-show-for]).
  function showScheduleFields() {
    var kind = document.querySelector("#check-form [name=schedule_kind]");
    if (!kind) { return; }
    document.querySelectorAll("#check-form [data-show-for]").forEach(function (wrapper) {
      var kinds = wrapper.getAttribute("data-show-for").split(" ");
      wrapper.hidden = kinds.indexOf("all") < 0 && kinds.indexOf(kind.value || "period") < 0;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("#check-form [name=schedule_kind]")) {
      showScheduleFields();
    }
  });
  document.addEventListener("DOMContentLoaded", showScheduleFields);
})();
