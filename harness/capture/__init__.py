"""Packet evidence: a sniffer inside the sandbox (capture.pcap) and the decoder that turns
packets into history events after the trial."""
