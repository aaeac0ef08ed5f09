"""The Twilio adapter: voice webhooks, TwiML, signatures, SMS, and the Twilio emulator."""
