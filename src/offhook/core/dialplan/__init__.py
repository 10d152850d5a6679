"""Digit analysis and call routing by the dial plan (Cisco CallManager model), sans-IO."""
