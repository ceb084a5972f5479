"""The six call types, their short forms on the wire, and why an item can be rejected."""

from __future__ import annotations

from enum import StrEnum

CALL_TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
# analytics.js posts single calls to `/v1/<first letter of the type>`.
SHORT_FORMS = {t[0]: t for t in CALL_TYPES}
MAX_MESSAGE_ID_LENGTH = 100

# `context.ip` is filled from the peer only for client-side libraries, as Segment does.
CLIENT_SIDE_LIBRARIES = frozenset(
    {
        "analytics.js",
        "analytics-next",
        "analytics-ios",
        "analytics-android",
        "analytics-kotlin",
        "analytics-swift",
        "analytics-react-native",
        "analytics-flutter",
        "analytics_flutter",
        "analytics-xamarin",
    }
)


class RejectReason(StrEnum):
    """Why one item was refused; counted per source and kept with the item for inspection."""

    NOT_AN_OBJECT = "not_an_object"
    INVALID_TYPE = "invalid_type"
    NO_USER_ANON_ID = "no_user_anon_id"
    MISSING_EVENT = "missing_event"
    MISSING_GROUP_ID = "missing_group_id"
    MISSING_PREVIOUS_ID = "missing_previous_id"
    MISSING_USER_ID = "missing_user_id"
    INVALID_MESSAGE_ID = "invalid_message_id"
    INVALID_FIELD = "invalid_field"
    MESSAGE_TOO_LARGE = "message_too_large"
    TOO_MANY_ITEMS = "too_many_items"
    INVALID_WRITE_KEY = "invalid_write_key"
    SOURCE_DISABLED = "source_disabled"
    TOO_DEEP = "too_deep"  # objects/arrays nested past the limit (collector/sanitize.py)
    NUMBER_OUT_OF_RANGE = "number_out_of_range"  # a number that does not fit a double
    STORE_REFUSED = "store_refused"  # the event log refused the event alone (committer.py)
