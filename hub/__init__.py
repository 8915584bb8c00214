"""The omnichannel contact-center hub: domain, pipeline, HTTP API and command line."""

__version__ = "0.1.0"
