"""Attacks on an unlearned model (quantize, relearn, prompt): one file each, registered in
methods.registry.ATTACKS. Each asks whether forgetting survives: is the knowledge gone or hidden?"""
