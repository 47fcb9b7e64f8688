"""What tests share besides fixtures (those stay in tests/conftest.py).

- waiting: `eventually` (the one poll), `background_work_done`, `settle`
- server: the app served on a loopback port (`served`, `LiveServer`), test credentials,
  scratch PostgreSQL databases
- factories: test data through the admin API; charging: a priced charger, a simulator
- chat: a console-channel chat with the engine; sms, telegram, payments: the served app with
  that channel or card payments on; support, console: staff, the queue, the console's forms
- processes: `chargebot` as a real process; browser: Debian's Chromium via Playwright
- *_double: the network-boundary doubles for Stripe, Telegram and Twilio
"""
