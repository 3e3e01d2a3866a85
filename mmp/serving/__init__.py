"""Serving: `mmp serve-api` (`serve_api`), the BentoML service (`service`) and its routes,
middleware, adaptive batching and request schema; `mmp build` (`build`)."""
