"""Channel pages: list, create/edit per kind, detail with recent deliveries, send a test, and
the team's grouping settings. Members see; admins and owners change. Every channel is looked
up through its team (another team's channel is a 404)."""

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from apps.clock import database_now
from apps.teams.access import require_role
from apps.teams.current import current_membership, dashboard_login_required
from apps.teams.models import Membership

from .forms import ChannelForm, GroupingForm, described_settings, is_secret
from .models import Channel, Delivery, TeamNotificationSettings, new_channel_secret
from .testing import TestTooSoon, send_test_notification

RECENT_DELIVERIES = 25


def get_channel_for_user(user, channel_id, minimum=Membership.Role.MEMBER):
    """The channel if the user is in its team with `minimum`; 404 outside the team (whether or
    not it exists), 403 inside it without the role."""
    channel = Channel.objects.select_related("team").filter(id=channel_id).first()
    if channel is None:
        raise Http404("No such channel")
    return channel, require_role(user, channel.team_id, minimum)


def require_admin(membership: Membership) -> None:
    if not membership.has_role(Membership.Role.ADMIN):
        raise PermissionDenied("Only admins and owners can change channels.")


@dashboard_login_required
@require_http_methods(["GET"])
def channel_list(request):
    membership = current_membership(request)
    team = membership.team
    channels = list(Channel.objects.filter(team=team))
    for channel in channels:
        channel.last_delivery = channel.deliveries.order_by("-created_at", "-id").first()
    context = {
        "team": team,
        "channels": channels,
        "kinds": Channel.Kind.choices,
        "can_edit": membership.has_role(Membership.Role.ADMIN),
        "grouping": TeamNotificationSettings.objects.filter(team=team).first(),
    }
    return render(request, "notifications/channel_list.html", context)


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def channel_create(request, kind):
    membership = current_membership(request)
    require_admin(membership)
    if kind not in Channel.Kind.values:
        raise Http404("No such kind of channel")
    data = request.POST if request.method == "POST" else None
    form = ChannelForm(data, kind=kind, team=membership.team)
    if data is not None and form.is_valid():
        channel = form.save()
        messages.success(request, f"Channel {channel.name} created.")
        return redirect("notifications:channel-detail", channel.id)
    context = {"form": form, "kind_label": Channel.Kind(kind).label, "team": membership.team}
    return render(
        request, "notifications/channel_form.html", context, status=400 if form.errors else 200
    )


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def channel_edit(request, channel_id):
    channel, membership = get_channel_for_user(request.user, channel_id)
    require_admin(membership)
    data = request.POST if request.method == "POST" else None
    form = ChannelForm(data, kind=channel.kind, team=channel.team, instance=channel)
    if data is not None and form.is_valid():
        form.save()
        messages.success(request, f"Channel {channel.name} saved.")
        return redirect("notifications:channel-detail", channel.id)
    context = {"form": form, "channel": channel, "kind_label": channel.get_kind_display()}
    return render(
        request, "notifications/channel_form.html", context, status=400 if form.errors else 200
    )


@dashboard_login_required
@require_http_methods(["GET"])
def channel_detail(request, channel_id):
    channel, membership = get_channel_for_user(request.user, channel_id, Membership.Role.VIEWER)
    deliveries = Delivery.objects.filter(channel=channel).order_by("-created_at", "-id")
    shown_settings, stored_secrets = described_settings(channel)
    context = {
        "channel": channel,
        "shown_settings": shown_settings,
        "stored_secrets": stored_secrets,
        "is_url_shown": not is_secret(channel.kind, "url"),
        "deliveries": deliveries[:RECENT_DELIVERIES],
        "can_edit": membership.has_role(Membership.Role.ADMIN),
    }
    template = "notifications/channel_detail.html"
    if request.htmx:
        template += "#deliveries"
    return render(request, template, context)


@dashboard_login_required
@require_POST
def channel_test(request, channel_id):
    """Send a test notification now and show how it went (the result partial for htmx)."""
    channel, membership = get_channel_for_user(request.user, channel_id)
    require_admin(membership)
    try:
        delivery = send_test_notification(channel=channel, now=database_now())
    except TestTooSoon as exc:
        if request.htmx:
            # A 200 partial: htmx swaps 2xx answers only (base.html's responseHandling).
            return render(request, "notifications/_test_result.html", {"too_soon": exc})
        messages.error(request, f"{exc} Try again in a few seconds.")
        return redirect("notifications:channel-detail", channel.id)
    context = {"channel": channel, "delivery": delivery}
    if request.htmx:
        return render(request, "notifications/_test_result.html", context)
    level = messages.SUCCESS if delivery.status == Delivery.Status.SENT else messages.ERROR
    messages.add_message(
        request, level, f"Test notification: {delivery.status}. {delivery.last_error}"
    )
    return redirect("notifications:channel-detail", channel.id)


@dashboard_login_required
@require_POST
def channel_rotate_secret(request, channel_id):
    channel, membership = get_channel_for_user(request.user, channel_id)
    require_admin(membership)
    channel.secret = new_channel_secret()
    channel.save(update_fields=["secret", "updated_at"])
    messages.success(request, "New signing secret generated: update your receiver.")
    return redirect("notifications:channel-detail", channel.id)


@dashboard_login_required
@require_POST
def channel_delete(request, channel_id):
    channel, membership = get_channel_for_user(request.user, channel_id)
    require_admin(membership)
    name = channel.name
    channel.delete()
    messages.success(request, f"Channel {name} deleted.")
    return redirect("notifications:channel-list")


@dashboard_login_required
@require_http_methods(["GET", "POST"])
def grouping_settings(request):
    membership = current_membership(request)
    team = membership.team
    instance = TeamNotificationSettings.objects.filter(team=team).first()
    instance = instance or TeamNotificationSettings(
        team=team,
        group_wait=settings.NOTIFICATION_GROUP_WAIT,
        group_interval=settings.NOTIFICATION_GROUP_INTERVAL,
    )
    can_edit = membership.has_role(Membership.Role.ADMIN)
    data = request.POST if request.method == "POST" else None
    if data is not None and not can_edit:
        raise PermissionDenied("Only admins and owners can change grouping.")
    form = GroupingForm(data, instance=instance)
    if data is not None and form.is_valid():
        form.save()
        messages.success(request, "Grouping saved.")
        return redirect("notifications:grouping")
    context = {"form": form, "team": team, "can_edit": can_edit}
    return render(
        request, "notifications/grouping.html", context, status=400 if form.errors else 200
    )
