from datetime import timedelta

import factory
from django.contrib.auth import get_user_model

from apps.checks.models import Check
from apps.teams.models import Membership, Team


class TeamFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Team

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery")

    @factory.post_generation
    def saved(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    team = factory.SubFactory(TeamFactory)
    user = factory.SubFactory(UserFactory)
    role = Membership.Role.MEMBER


class CheckFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Check

    team = factory.SubFactory(TeamFactory)
    name = factory.Sequence(lambda n: f"nightly-job-{n}")
    slug = factory.Sequence(lambda n: f"nightly-job-{n}")
    environment = "production"
    tags = "backup nightly"
    period = timedelta(days=1)
    grace = timedelta(hours=1)
