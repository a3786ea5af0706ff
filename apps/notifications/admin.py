from django.contrib import admin

from .models import Channel, Delivery, Notification, TeamNotificationSettings


@admin.register(Channel)
class ChannelAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "kind", "is_enabled"]
    list_filter = ["kind", "is_enabled"]
    # The signing secret is shown to the team's admins on the channel page, not here.
    exclude = ["secret"]


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ["summary", "team", "target", "status", "attempts", "next_attempt_at"]
    list_filter = ["status", "is_test"]
    readonly_fields = [field.name for field in Delivery._meta.fields]


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ["incident", "event", "round", "step", "target", "status", "created_at"]
    list_filter = ["status", "event"]
    readonly_fields = [field.name for field in Notification._meta.fields]


admin.site.register(TeamNotificationSettings)
