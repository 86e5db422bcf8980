"""placeholder"""


def run_s7(b):
    """placeholder"""


def table_rows(b):
    """placeholder"""
