"""frugal's Hydra sweepers: `hydra/sweeper=halving` (successive halving inside a sweep's
budget envelope). `frugal.sweep.plugins.register()` puts the folder above `hydra_plugins` on
`sys.path` and registers them with Hydra."""
