"""The OAuth adapter: discovery, the token endpoints, the consent and channel-binding pages."""
