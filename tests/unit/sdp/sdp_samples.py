"""Real-world SDP bodies shared by the sdp tests."""

from __future__ import annotations

BARESIP = (
    b"v=0\r\n"
    b"o=- 2790227588 1983203283 IN IP4 192.168.1.10\r\n"
    b"s=-\r\n"
    b"c=IN IP4 192.168.1.10\r\n"
    b"t=0 0\r\n"
    b"a=tool:baresip 3.10.1\r\n"
    b"m=audio 10680 RTP/AVP 96 0 8 101\r\n"
    b"b=AS:102\r\n"
    b"a=rtpmap:96 opus/48000/2\r\n"
    b"a=fmtp:96 stereo=1;sprop-stereo=1\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=sendrecv\r\n"
    b"a=label:1\r\n"
    b"a=rtcp-rsize\r\n"
    b"a=ssrc:1257413454 cname:bd5b7f53-0c1d-4d4e-9b4c-6a54df0e0f9c\r\n"
    b"a=ptime:20\r\n"
)

CUCM = (
    b"v=0\r\n"
    b"o=CiscoSystemsCCM-SIP 2000 1 IN IP4 10.10.10.1\r\n"
    b"s=SIP Call\r\n"
    b"c=IN IP4 10.10.20.5\r\n"
    b"b=TIAS:64000\r\n"
    b"b=AS:64\r\n"
    b"t=0 0\r\n"
    b"m=audio 24580 RTP/AVP 0 101\r\n"
    b"b=TIAS:64000\r\n"
    b"a=ptime:20\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
)

# A Cisco 79xx SIP phone: c= after m=, session name "SIP Call".
CISCO_PHONE_HOLD = (
    b"v=0\r\n"
    b"o=Cisco-SIPUA 24872 1 IN IP4 192.168.1.20\r\n"
    b"s=SIP Call\r\n"
    b"t=0 0\r\n"
    b"m=audio 25008 RTP/AVP 0 8 18 101\r\n"
    b"c=IN IP4 0.0.0.0\r\n"
    b"a=rtpmap:0 PCMU/8000\r\n"
    b"a=rtpmap:8 PCMA/8000\r\n"
    b"a=rtpmap:18 G729/8000\r\n"
    b"a=fmtp:18 annexb=no\r\n"
    b"a=rtpmap:101 telephone-event/8000\r\n"
    b"a=fmtp:101 0-15\r\n"
    b"a=sendonly\r\n"
)
