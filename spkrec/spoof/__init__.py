"""Simulated spoofing attacks (``simulate``) and GMM countermeasures (``cm``).

The attacks are simulations of real ones, made from bona fide audio without an external spoof
corpus: Griffin-Lim resynthesis, WORLD vocoder copy-synthesis (needs ``pyworld``) and a replay
simulation (needs ``pyroomacoustics``); see docs/spoofing.md.
"""
