"""Imported last by the forkserver, after its preloads: collect, then freeze the heap.

Workers are forked from the forkserver and share its pages copy-on-write. Python's
cyclic garbage collector writes into the header of every object it examines, so the
first collections in a worker would copy every page holding a preloaded module's objects
into the worker (measured: a worker's private memory grew to most of the forkserver's
size). ``gc.freeze()`` moves everything that exists now into a permanent generation that
collections never visit, so those pages stay shared and collections in the workers are
cheaper too.
"""
import gc

gc.collect()
gc.freeze()
gc.enable()         # off since _gc_paused, the first preload
