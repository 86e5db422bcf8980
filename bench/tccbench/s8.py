"""placeholder"""


def run_s8(b):
    """placeholder"""


def table_rows(b):
    """placeholder"""
