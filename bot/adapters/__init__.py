"""Channel adapters: parse channel input into Inbound, render Replies for the channel."""
