"""Imports every module that defines a Flair class, so that saved swener models load."""
