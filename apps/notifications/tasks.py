from celery import shared_task

from apps.checks.clock import database_now

from .delivery import TransientDeliveryError, deliver_notification, stale_notification_ids


@shared_task(
    acks_late=True,
    autoretry_for=(TransientDeliveryError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=10,
)
def deliver_notification_task(notification_id: int) -> str:
    return deliver_notification(notification_id=notification_id, now=database_now())


@shared_task
def redeliver_stale_notifications_task() -> str:
    ids = stale_notification_ids(now=database_now())
    for notification_id in ids:
        deliver_notification_task.delay(notification_id)
    return f"redelivered {len(ids)}"
