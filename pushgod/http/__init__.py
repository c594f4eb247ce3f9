"""The aiohttp adapter: middlewares, the PushGo send routes, the read and admin APIs."""
