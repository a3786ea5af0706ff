from celery import shared_task

from .password_reset import send_password_reset


@shared_task(ignore_result=True, acks_late=True)
def send_password_reset_task(email: str) -> str:
    sent = send_password_reset(email=email)
    return f"sent {sent} reset link{'s' if sent != 1 else ''}"
