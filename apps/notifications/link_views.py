"""One-click actions from alert emails. GET only shows a confirmation page (mail scanners fetch
links and must not acknowledge anything); POST carries the action out, without a login: the
signed, expiring, single-use token is the credential."""

from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from apps.clock import database_now
from apps.incidents.services import IncidentActionError
from apps.incidents.tokens import SILENCE_ACTIONS, InvalidToken, read_action_token

from .links import ActionNotAllowed, inspect_action_token, perform_action_token

MAX_TOKEN_LENGTH = 500


# The token in the URL is the credential and it is single-use, so a forged cross-site POST
# cannot do more than the link's owner clicking it; there is no session for CSRF to protect.
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def action(request, token: str):
    if len(token) > MAX_TOKEN_LENGTH:
        return _refused(request, "This link is not valid.", status=400)
    try:
        if request.method == "GET":
            found = inspect_action_token(token)
            context = {
                "action": found.claim.action,
                "label": found.claim.label,
                "incident": found.incident,
                "via_channel": found.via_channel,
                "silence_until": silence_until(found.claim.action, database_now()),
            }
            return render(request, "notifications/action_confirm.html", context)
        incident = perform_action_token(token, now=database_now())
    except ActionNotAllowed as exc:
        return _refused(request, str(exc), status=403)
    except InvalidToken as exc:
        return _refused(request, str(exc), status=400)
    except IncidentActionError as exc:
        return _refused(request, str(exc), status=409)
    done = {"incident": incident, "action": read_action_token(token).action}
    return render(request, "notifications/action_done.html", done)


def silence_until(action: str, now):
    return now + SILENCE_ACTIONS[action] if action in SILENCE_ACTIONS else None


def _refused(request, message: str, *, status: int):
    return render(request, "notifications/action_refused.html", {"message": message}, status=status)
