"""enirace: reproduce the AWS Lambda late-ENI race on one Linux machine."""

__version__ = "0.1.0"
