"""A phone naming only codecs we do not know still gets an offer (a fuzz_sccp_session finding).

A CapabilitiesRes listing only unknown payload types made ``preferred`` return
an empty list, and answering a call on that phone raised IndexError in
``PhoneCall.pick_up`` (the connection caught it and dropped the phone).
"""

from __future__ import annotations

from offhook.sccp import mediamap


def test_unknown_codecs_fall_back_to_g711() -> None:
    fallback = mediamap.preferred(())
    assert fallback
    assert mediamap.preferred((300,)) == fallback
    assert mediamap.preferred((0xFFFFFFFF, 301)) == fallback


def test_known_codecs_are_kept_and_unknown_ones_ignored() -> None:
    alaw = mediamap.preferred((mediamap.PAYLOAD_G711_ALAW,))
    assert mediamap.preferred((mediamap.PAYLOAD_G711_ALAW, 300)) == alaw
    assert len(alaw) == 1
