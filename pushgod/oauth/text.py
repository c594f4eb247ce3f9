"""Every word the OAuth pages show, in one place, so a translation is one more instance."""

from __future__ import annotations

from dataclasses import dataclass

from pushgod.model.oauth import OAuthScope


@dataclass(frozen=True, slots=True)
class PageText:
    lang: str
    consent_title: str
    consent_intro: str  # {client}
    consent_redirect: str  # {host}
    consent_scopes: str
    scope_names: dict[str, str]
    consent_channels: str
    consent_no_channels: str
    consent_add_hint: str
    channel_id: str
    password: str
    add_channel: str
    remove: str
    allow: str
    deny: str
    need_a_channel: str
    wrong_password: str
    rate_limited: str  # {seconds}
    busy: str
    form_expired: str
    bind_title: str
    bind_intro: str
    revoke_title: str
    revoke_intro: str
    bind_submit: str
    revoke_submit: str
    bind_done_title: str
    bind_done: str  # {channel}
    revoke_done: str  # {channel}
    close_window: str
    error_title: str
    bad_request: str
    bind_not_found: str
    bind_completed: str
    bind_expired: str
    footer: str


ENGLISH = PageText(
    lang="en",
    consent_title="Allow access to pushgod",
    consent_intro="{client} asks to act on your pushgod channels.",
    consent_redirect="After you decide, you return to {host}.",
    consent_scopes="It asks to:",
    scope_names={
        OAuthScope.TOOLS: "send messages, events and thing updates, and read them",
        OAuthScope.CHANNELS_MANAGE: "list its channels and ask you to add or remove one",
    },
    consent_channels="Channels it may use",
    consent_no_channels="No channel yet. Add each channel it may use with its password.",
    consent_add_hint="The password is checked now and is not kept with this permission.",
    channel_id="Channel id",
    password="Channel password",
    add_channel="Add channel",
    remove="Remove",
    allow="Allow",
    deny="Deny",
    need_a_channel="Add at least one channel before you allow.",
    wrong_password="That channel id and password do not match.",
    rate_limited="Too many wrong passwords. Try again in {seconds} seconds.",
    busy="pushgod is busy. Try again in a moment.",
    form_expired="This form has expired. Reload the page and try again.",
    bind_title="Add a channel",
    bind_intro="Your assistant asks to use one more channel. Enter its id and password.",
    revoke_title="Remove a channel",
    revoke_intro="Your assistant will stop using this channel. Confirm with its password.",
    bind_submit="Add channel",
    revoke_submit="Remove channel",
    bind_done_title="Done",
    bind_done="{channel} was added. You can return to your assistant.",
    revoke_done="{channel} was removed. You can return to your assistant.",
    close_window="You can close this window.",
    error_title="This request cannot go ahead",
    bad_request="The link you followed is not valid: {reason}",
    bind_not_found="This link is not valid. Ask your assistant for a new one.",
    bind_completed="This link was already used. Ask your assistant for a new one if needed.",
    bind_expired="This link has expired. Ask your assistant for a new one.",
    footer="pushgod",
)
