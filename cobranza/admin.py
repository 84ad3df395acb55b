"""Django admin for what administrators configure in collections: the contact rules of each
country and the holidays added to the national ones (docs/domain.md#contact-rules)."""

from django.contrib import admin

from .models import ContactRules, Holiday


@admin.register(ContactRules)
class ContactRulesAdmin(admin.ModelAdmin):
    list_display = (
        "country",
        "name",
        "start_time",
        "end_time",
        "weekdays",
        "saturday_start_time",
        "saturday_end_time",
        "max_per_channel_7d",
        "max_calls_7d",
        "max_contacts_7d",
        "skip_holidays",
        "spread_sends",
    )
    search_fields = ("country", "name")


@admin.register(Holiday)
class HolidayAdmin(admin.ModelAdmin):
    list_display = ("date", "country", "name")
    list_filter = ("country",)
    date_hierarchy = "date"
