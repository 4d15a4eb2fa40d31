"""Staff manage accounts here; deleting one goes through the service that also deletes its captures' files."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.models import User
from classifier import services


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    def delete_model(self, request: HttpRequest, obj: User) -> None:
        services.user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            services.user_delete(user=user)
