"""The account page: a person's own settings, whatever team they look at: the display time
zone, the status reports, the email address and the password. Each is its own form; the submit
button's name says which one was sent."""

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from apps.teams.current import dashboard_login_required
from apps.teams.display_time import zone_names
from apps.teams.models import UserSettings
from apps.teams.report_periods import DEFAULT_FREQUENCY, Frequency
from apps.teams.services import set_report_frequency

from .account_forms import DisplayZoneForm, EmailForm, ReportFrequencyForm

FORMS = ("zone", "reports", "email", "password")


def _forms(request, sent: str | None):
    user = request.user
    data = request.POST if sent else None
    settings_row = UserSettings.objects.filter(user=user).first()
    return {
        "zone": DisplayZoneForm(
            data if sent == "zone" else None,
            initial={"display_timezone": settings_row.display_timezone if settings_row else ""},
        ),
        "reports": ReportFrequencyForm(
            data if sent == "reports" else None,
            initial={
                "report_frequency": settings_row.report_frequency
                if settings_row
                else DEFAULT_FREQUENCY.value
            },
        ),
        "email": EmailForm(data if sent == "email" else None, user=user),
        "password": PasswordChangeForm(user, data if sent == "password" else None),
    }


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def account(request):
    sent = next((name for name in FORMS if f"save_{name}" in request.POST), None)
    if request.method == "POST" and sent is None:
        messages.error(request, "Nothing was saved: the form sent no known button.")
        return redirect("dashboard:account")
    forms = _forms(request, sent)
    if sent and forms[sent].is_valid():
        form = forms[sent]
        if sent == "zone":
            UserSettings.objects.update_or_create(
                user=request.user,
                defaults={"display_timezone": form.cleaned_data["display_timezone"]},
            )
            messages.success(request, "Saved: times are shown in your chosen zone.")
        elif sent == "reports":
            frequency = Frequency(form.cleaned_data["report_frequency"])
            set_report_frequency(user_id=request.user.pk, frequency=frequency)
            messages.success(
                request,
                "Saved: no more status reports."
                if frequency == Frequency.OFF
                else f"Saved: a {frequency} status report.",
            )
        elif sent == "email":
            request.user.email = form.cleaned_data["email"]
            request.user.save(update_fields=["email"])
            messages.success(request, "Saved: alerts and password resets go to the new address.")
        else:
            form.save()
            # Changing the password logs out every other session, but not this one.
            update_session_auth_hash(request, form.user)
            messages.success(request, "Your password is changed.")
        return redirect("dashboard:account")
    context = {"forms": forms, "zone_names": zone_names(), "sent": sent}
    return render(request, "dashboard/account.html", context, status=400 if sent else 200)
