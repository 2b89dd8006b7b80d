"""Imported first by the forkserver: no cyclic garbage collection while it preloads.

Importing numpy and pyarrow allocates hundreds of thousands of objects, and the
collector would walk them again and again (~1-2 % of a 200k-subscriber CSV run's CPU
samples were collections in the forkserver); nothing they make is garbage worth it.
``_frozen``, imported last, collects once, freezes and switches collection back on.
"""
import gc

gc.disable()
