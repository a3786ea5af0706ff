"""JSON in, dashboard form out: the API's silences, maintenance windows, escalation policies and
channels are validated by the same Django forms as the pages (apps/escalation/forms.py,
apps/notifications/forms.py), so a rule lives in one place and the API cannot drift from it.
These helpers translate the API's JSON values into form data and form errors back into the
API's field errors (see check_settings.py, which does the same for checks)."""

from rest_framework import serializers
from rest_framework.exceptions import ValidationError

# The dashboard's DurationInput counts in minutes, hours or days.
_UNITS = (("days", 86400), ("hours", 3600), ("minutes", 60))


def form_errors(form, renames: dict | None = None) -> dict[str, list[str]]:
    """The form's errors keyed by the API's field names (`__all__` is `non_field_errors`)."""
    renames = renames or {}
    fields: dict[str, list[str]] = {}
    for name, messages in form.errors.items():
        key = "non_field_errors" if name == "__all__" else renames.get(name, name)
        fields.setdefault(key, []).extend(messages)
    return fields


def duration_data(name: str, seconds: int | None) -> dict[str, str]:
    """Form data of a DurationInput for `seconds` (None: empty). The caller has checked that
    `seconds` is a whole number of minutes (see `whole_minutes`)."""
    if seconds is None:
        return {f"{name}_0": "", f"{name}_1": "minutes"}
    for unit, size in _UNITS:
        if seconds % size == 0:
            return {f"{name}_0": str(seconds // size), f"{name}_1": unit}
    raise ValueError(f"{seconds} is not a whole number of minutes")


def whole_minutes(value: int | None) -> None:
    """Validator of a duration field in seconds: the forms count in minutes."""
    if value is not None and value % 60:
        raise ValidationError("Must be a whole number of minutes, in seconds (a multiple of 60).")


def seconds_of(value) -> int | None:
    return None if value is None else int(value.total_seconds())


class StrictObjectSerializer(serializers.Serializer):
    """Input that must be a JSON object of known fields: a misspelt field is an error, not
    something silently ignored."""

    object_name = "object"

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise ValidationError(
                {"non_field_errors": [f"Expected a JSON object ({self.object_name})."]}
            )
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise ValidationError({str(name)[:100]: ["Unknown field."] for name in unknown[:20]})
        return super().to_internal_value(data)


def read_input(serializer_class, data, *, partial: bool = False) -> dict:
    serializer = serializer_class(data=data, partial=partial)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def valid_form(form_class, data: dict, *, renames: dict | None = None, **kwargs):
    """`form_class` bound to `data` (with kwargs such as team= or instance=), once it is valid;
    otherwise ValidationError with its errors under the API's field names (`renames`)."""
    form = form_class(data, **kwargs)
    if not form.is_valid():
        raise ValidationError(form_errors(form, renames))
    return form
