"""Contacts exports from the providers' web UIs: one row per contact, not events.

A marketer who downloads "the audience" or "the contacts" gets a file of people with their
attributes and a few dates (opt-in, last change), not a history of sends, opens and clicks.
None of those dates is an engagement event engscore could score honestly: an opt-in time is
not an open, a "last changed" time may be an address edit. Such a file is refused with a
one-line error that says what it is and how to use it: as ``--contacts FILE`` of ``engscore
score``, whose profile rules read its columns (``io/contacts.py`` finds the ``Email Address``
/ ``EMAIL`` key column of both exports below).

Recognised exports (columns that only such an export has together):

* Mailchimp audience export (the audience's "Export Audience", or the ``audiences`` stage of
  an account export; one CSV each for subscribed, unsubscribed and cleaned contacts), whose
  header carries ``Email Address``, ``MEMBER_RATING``, ``OPTIN_TIME``, ``CONFIRM_TIME``,
  ``LAST_CHANGED``, ``LEID``, ``EUID``. Mailchimp's pages describe the export
  (https://mailchimp.com/developer/marketing/docs/account-exports/ ,
  https://mailchimp.com/help/about-cleaned-contacts/) but list no column names; the names are
  those of real exports kept in public code, e.g. the header in buren/honey_format
  ``spec/honey_format/csv_spec.rb``. The ``UNSUB_TIME`` / ``CLEAN_TIME``
  columns of the unsubscribed and cleaned files are left out for the same reason: no provider
  page documents them.
* Brevo contacts export (Contacts > Export, or ``POST /v3/contacts/export``): the mandatory
  attributes ``EMAIL``, ``ADDED_TIME``, ``MODIFIED_TIME``
  (https://developers.brevo.com/reference/request-contact-export, ``exportMandatoryAttributes``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ContactsExport:
    """One provider's contacts export, recognised by columns only it has together."""

    name: str
    signature: tuple[str, ...]
    source: str


CONTACT_EXPORTS = (
    ContactsExport(
        "a Mailchimp audience export",
        ("Email Address", "MEMBER_RATING", "OPTIN_TIME", "LAST_CHANGED"),
        "https://mailchimp.com/developer/marketing/docs/account-exports/",
    ),
    ContactsExport(
        "a Brevo contacts export",
        ("EMAIL", "ADDED_TIME", "MODIFIED_TIME"),
        "https://developers.brevo.com/reference/request-contact-export",
    ),
)


def contacts_export(columns: Iterable[str]) -> ContactsExport | None:
    """The contacts export whose signature columns are all present, or None."""
    present = set(columns)
    for export in CONTACT_EXPORTS:
        if all(column in present for column in export.signature):
            return export
    return None


def refusal(path: object, export: ContactsExport) -> str:
    """The one-line message refusing ``export`` as events."""
    return (
        f"{path}: this is {export.name}, a contacts file (one row per contact, no events); "
        f"pass it to `engscore score` as --contacts {path}"
    )
