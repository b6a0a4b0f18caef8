# Bare-metal test guests, built from source with gcc/as (no downloads).
guests:
