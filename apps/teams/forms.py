from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import Membership


class AccountForm(UserCreationForm):
    """Username and a password typed twice, checked by Django's password validators."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update(autocapitalize="none", autocomplete="username")
        self.fields["username"].help_text = "Letters, digits and @ . + - _ only; 150 at most."
        self.fields["password1"].help_text = "At least 8 characters, and not a common password."


class SignUpForm(AccountForm):
    email = forms.EmailField(
        max_length=254, help_text="For password resets and alerts.", label="Email"
    )
    team_name = forms.CharField(
        max_length=100, label="Team name", help_text="You can invite others to it afterwards."
    )

    field_order = ["team_name", "username", "email", "password1", "password2"]

    def clean_team_name(self):
        name = self.cleaned_data["team_name"].strip()
        if not name:
            raise forms.ValidationError("Enter a team name.")
        return name


class InviteForm(forms.Form):
    email = forms.EmailField(max_length=254, label="Email address")
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        initial=Membership.Role.MEMBER,
        label="Role",
        error_messages={"invalid_choice": "Choose owner, admin, member or viewer."},
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        choices=Membership.Role.choices,
        error_messages={"invalid_choice": "Choose owner, admin, member or viewer."},
    )
