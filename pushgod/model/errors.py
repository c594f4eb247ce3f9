"""The one error type of pushgod and the table of its stable error codes.

Every adapter renders a `PushgodError` the same way: the HTTP envelope
(`{"success": false, "error": ..., "error_code": ...}` with `status`), later the MCP
tool error and the MQTT log line. Codes follow PushGo's where PushGo has one.

    400 request shape  missing_json_content_type, invalid_json_syntax, invalid_json_data,
                       invalid_query
    400 field rules    channel_id_required, invalid_channel_id, password_required,
                       invalid_password, invalid_op_id, invalid_thing_id, invalid_event_id,
                       event_id_required, thing_id_required, title_required,
                       invalid_severity, invalid_status, invalid_message,
                       event_time_required, observed_at_required,
                       occurred_at_required_for_thing_scoped_message, invalid_timestamp,
                       invalid_tags, invalid_images, invalid_metadata, invalid_attrs,
                       invalid_external_ids, invalid_location, invalid_field,
                       invalid_channel_name, invalid_scope, invalid_duration,
                       invalid_sealed, invalid_public_key, invalid_topic,
                       invalid_client_metadata, invalid_redirect_uri, invalid_target,
                       password_forbidden_in_oauth_mode (MCP),
                       password_required_in_legacy_mode (MCP),
                       decryption_failed (raised by `pushgod listen`, not the server)
    400 backup files   not_a_database, database_corrupt, not_a_pushgod_database,
                       schema_too_new (`pushgod restore` and `pushgod backup`, not the server)
    401                authentication_failed
    403                password_mismatch, insufficient_scope, channel_forbidden,
                       pairing_code_invalid, form_expired (a page's CSRF check),
                       channel_not_bound, auth_mode_not_supported (MCP),
                       permission_denied (backup, restore)
    404                route_not_found, channel_not_found, event_not_found,
                       thing_not_found, token_not_found, client_not_found,
                       device_not_found, oauth_client_not_found, grant_not_found,
                       bind_session_not_found, resource_not_found (MCP),
                       database_not_found, backup_not_found (backup, restore)
    405                method_not_allowed
    409                event_closed, thing_deleted, client_limit_reached,
                       no_paired_clients, device_exists, bind_session_completed,
                       data_dir_in_use (the data-directory lock), backup_exists,
                       database_busy (backup, restore)
    410                bind_session_expired
    413                payload_too_large
    429                rate_limited
    500                internal_error, invalid_config (start-up only)
    503                server_busy, broker_unavailable (MQTT broker provisioning),
                       disk_full (backup, restore)
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    MISSING_JSON_CONTENT_TYPE = "missing_json_content_type"
    INVALID_JSON_SYNTAX = "invalid_json_syntax"
    INVALID_JSON_DATA = "invalid_json_data"
    INVALID_QUERY = "invalid_query"
    CHANNEL_ID_REQUIRED = "channel_id_required"
    INVALID_CHANNEL_ID = "invalid_channel_id"
    PASSWORD_REQUIRED = "password_required"
    INVALID_PASSWORD = "invalid_password"
    INVALID_OP_ID = "invalid_op_id"
    INVALID_THING_ID = "invalid_thing_id"
    INVALID_EVENT_ID = "invalid_event_id"
    EVENT_ID_REQUIRED = "event_id_required"
    THING_ID_REQUIRED = "thing_id_required"
    TITLE_REQUIRED = "title_required"
    INVALID_SEVERITY = "invalid_severity"
    INVALID_STATUS = "invalid_status"
    INVALID_MESSAGE = "invalid_message"
    EVENT_TIME_REQUIRED = "event_time_required"
    OBSERVED_AT_REQUIRED = "observed_at_required"
    OCCURRED_AT_REQUIRED = "occurred_at_required_for_thing_scoped_message"
    INVALID_TIMESTAMP = "invalid_timestamp"
    INVALID_TAGS = "invalid_tags"
    INVALID_IMAGES = "invalid_images"
    INVALID_METADATA = "invalid_metadata"
    INVALID_ATTRS = "invalid_attrs"
    INVALID_EXTERNAL_IDS = "invalid_external_ids"
    INVALID_LOCATION = "invalid_location"
    INVALID_FIELD = "invalid_field"
    INVALID_CHANNEL_NAME = "invalid_channel_name"
    INVALID_SCOPE = "invalid_scope"
    INVALID_DURATION = "invalid_duration"
    INVALID_SEALED = "invalid_sealed"
    INVALID_PUBLIC_KEY = "invalid_public_key"
    INVALID_TOPIC = "invalid_topic"
    INVALID_CLIENT_METADATA = "invalid_client_metadata"
    DECRYPTION_FAILED = "decryption_failed"
    PAIRING_CODE_INVALID = "pairing_code_invalid"
    CLIENT_NOT_FOUND = "client_not_found"
    CLIENT_LIMIT_REACHED = "client_limit_reached"
    DEVICE_NOT_FOUND = "device_not_found"
    DEVICE_EXISTS = "device_exists"
    BROKER_UNAVAILABLE = "broker_unavailable"
    NO_PAIRED_CLIENTS = "no_paired_clients"
    AUTHENTICATION_FAILED = "authentication_failed"
    PASSWORD_MISMATCH = "password_mismatch"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    CHANNEL_FORBIDDEN = "channel_forbidden"
    ROUTE_NOT_FOUND = "route_not_found"
    CHANNEL_NOT_FOUND = "channel_not_found"
    EVENT_NOT_FOUND = "event_not_found"
    THING_NOT_FOUND = "thing_not_found"
    TOKEN_NOT_FOUND = "token_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    EVENT_CLOSED = "event_closed"
    THING_DELETED = "thing_deleted"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"
    INVALID_CONFIG = "invalid_config"
    SERVER_BUSY = "server_busy"
    INVALID_REDIRECT_URI = "invalid_redirect_uri"
    INVALID_TARGET = "invalid_target"
    OAUTH_CLIENT_NOT_FOUND = "oauth_client_not_found"
    GRANT_NOT_FOUND = "grant_not_found"
    BIND_SESSION_NOT_FOUND = "bind_session_not_found"
    BIND_SESSION_EXPIRED = "bind_session_expired"
    BIND_SESSION_COMPLETED = "bind_session_completed"
    FORM_EXPIRED = "form_expired"
    PASSWORD_FORBIDDEN_IN_OAUTH_MODE = "password_forbidden_in_oauth_mode"
    PASSWORD_REQUIRED_IN_LEGACY_MODE = "password_required_in_legacy_mode"
    CHANNEL_NOT_BOUND = "channel_not_bound"
    AUTH_MODE_NOT_SUPPORTED = "auth_mode_not_supported"
    RESOURCE_NOT_FOUND = "resource_not_found"
    DATA_DIR_IN_USE = "data_dir_in_use"
    DATABASE_NOT_FOUND = "database_not_found"
    DATABASE_BUSY = "database_busy"
    DATABASE_CORRUPT = "database_corrupt"
    NOT_A_DATABASE = "not_a_database"
    NOT_A_PUSHGOD_DATABASE = "not_a_pushgod_database"
    SCHEMA_TOO_NEW = "schema_too_new"
    BACKUP_NOT_FOUND = "backup_not_found"
    BACKUP_EXISTS = "backup_exists"
    DISK_FULL = "disk_full"
    PERMISSION_DENIED = "permission_denied"


_NOT_400: dict[ErrorCode, int] = {
    ErrorCode.AUTHENTICATION_FAILED: 401,
    ErrorCode.PASSWORD_MISMATCH: 403,
    ErrorCode.INSUFFICIENT_SCOPE: 403,
    ErrorCode.CHANNEL_FORBIDDEN: 403,
    ErrorCode.ROUTE_NOT_FOUND: 404,
    ErrorCode.CHANNEL_NOT_FOUND: 404,
    ErrorCode.EVENT_NOT_FOUND: 404,
    ErrorCode.THING_NOT_FOUND: 404,
    ErrorCode.TOKEN_NOT_FOUND: 404,
    ErrorCode.CLIENT_NOT_FOUND: 404,
    ErrorCode.DEVICE_NOT_FOUND: 404,
    ErrorCode.DEVICE_EXISTS: 409,
    ErrorCode.BROKER_UNAVAILABLE: 503,
    ErrorCode.PAIRING_CODE_INVALID: 403,
    ErrorCode.CLIENT_LIMIT_REACHED: 409,
    ErrorCode.NO_PAIRED_CLIENTS: 409,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.EVENT_CLOSED: 409,
    ErrorCode.THING_DELETED: 409,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.INTERNAL_ERROR: 500,
    ErrorCode.INVALID_CONFIG: 500,
    ErrorCode.SERVER_BUSY: 503,
    ErrorCode.OAUTH_CLIENT_NOT_FOUND: 404,
    ErrorCode.GRANT_NOT_FOUND: 404,
    ErrorCode.BIND_SESSION_NOT_FOUND: 404,
    ErrorCode.BIND_SESSION_EXPIRED: 410,
    ErrorCode.BIND_SESSION_COMPLETED: 409,
    ErrorCode.FORM_EXPIRED: 403,
    ErrorCode.CHANNEL_NOT_BOUND: 403,
    ErrorCode.AUTH_MODE_NOT_SUPPORTED: 403,
    ErrorCode.RESOURCE_NOT_FOUND: 404,
    ErrorCode.DATA_DIR_IN_USE: 409,
    ErrorCode.DATABASE_NOT_FOUND: 404,
    ErrorCode.DATABASE_BUSY: 409,
    ErrorCode.BACKUP_NOT_FOUND: 404,
    ErrorCode.BACKUP_EXISTS: 409,
    ErrorCode.DISK_FULL: 503,
    ErrorCode.PERMISSION_DENIED: 403,
}

STATUS: dict[ErrorCode, int] = {code: _NOT_400.get(code, 400) for code in ErrorCode}
"""HTTP status of every code; everything not listed above is a 400."""


class PushgodError(Exception):
    """A failure with a stable code, an HTTP status and a message safe to show the caller.

    The message names the field and the rule that was broken; it never carries a
    password, a token or sealed plaintext.
    """

    def __init__(self, code: ErrorCode, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def __repr__(self) -> str:
        return f"PushgodError({self.code.value!r}, {self.message!r})"
