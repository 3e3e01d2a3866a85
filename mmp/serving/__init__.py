"""Serving: `mmp serve-api` (`serve_api`), the BentoML service (`service`) and its routes,
middleware, adaptive batching, request body limits and schema, and graceful shutdown (`drain`);
`mmp build` (`build`)."""
