"""The ``lssgen`` command line. The libraries are ``lssgen_core``, ``lssgen_diffusers`` and
``lssgen_kdiffusion``; this package only dispatches subcommands to them."""
