from django import template

from apps.incidents.timeline import describe_event

register = template.Library()

register.filter("describe_event", describe_event)
