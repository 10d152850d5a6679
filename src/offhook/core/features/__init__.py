"""Call features: one module a feature, each around a small decision table.

``hold`` (music on hold), ``transfer`` (blind, attended, Replaces),
``resources`` (legs that end on a media server endpoint), ``conference``
(ad hoc and meet-me bridges). They act through the ``CallEngine``'s feature
operations (``offer_media``, ``add_resource``, ``release_leg`` ...) and are
called from inside call control's queue, so they never run re-entrantly.
"""
