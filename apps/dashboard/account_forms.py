"""Forms of the account page (apps/dashboard/account.py)."""

from django import forms
from django.contrib.auth import get_user_model

from apps.teams.display_time import MAX_ZONE_NAME, zone_or_none
from apps.teams.models import UserSettings


class DisplayZoneForm(forms.Form):
    display_timezone = forms.CharField(
        label="Display time zone",
        required=False,
        max_length=MAX_ZONE_NAME,
        help_text="An IANA zone such as Europe/Riga; leave it empty to use your browser's zone.",
        widget=forms.TextInput(attrs={"list": "zone-names", "autocomplete": "off"}),
    )

    def clean_display_timezone(self):
        name = self.cleaned_data["display_timezone"].strip()
        if name and zone_or_none(name) is None:
            raise forms.ValidationError(
                "Unknown time zone: pick one from the list, such as Europe/Riga or UTC."
            )
        return name


class EmailForm(forms.Form):
    email = forms.EmailField(label="Email address", max_length=254)
    current_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=4096,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text="Needed to change where password resets are sent.",
    )

    def __init__(self, *args, user, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)
        self.fields["email"].initial = user.email

    def clean_current_password(self):
        password = self.cleaned_data["current_password"]
        if not self.user.check_password(password):
            raise forms.ValidationError("That is not your current password.")
        return password

    def clean_email(self):
        email = get_user_model().objects.normalize_email(self.cleaned_data["email"])
        taken = get_user_model().objects.filter(email__iexact=email).exclude(pk=self.user.pk)
        if taken.exists():
            raise forms.ValidationError("Another account uses this address.")
        return email


class ReportFrequencyForm(forms.Form):
    report_frequency = forms.ChoiceField(
        label="Send me a report",
        choices=UserSettings.Frequency.choices,
        error_messages={"invalid_choice": "Choose off, daily, weekly or monthly."},
        help_text="Monthly reports come on the 1st, weekly ones on Mondays, daily ones each day.",
    )
