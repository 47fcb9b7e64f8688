"""English. Plain GSM-7 text only: no emoji, curly quotes or long dashes (SMS reads it too)."""

STRINGS: dict[str, str] = {
    "welcome": (
        "Hi {name}! I'm chargebot. Scan the QR code on a charger or type the connector's code "
        "to charge. Share your location and I'll show free chargers near you. /help shows "
        "everything I can do."
    ),
    "help": (
        "Here's what I can do:\n"
        "/find - free chargers near you (share your location or type a place)\n"
        "/start <code> - charge at a connector (or just type the code)\n"
        "/status - how your charging is going\n"
        "/stop - end your charging\n"
        "/history - your sessions and this month's total\n"
        "/prices - our prices\n"
        "/support - talk to a person\n"
        "/language - switch language (svenska)\n"
        "You can also ask a question in your own words."
    ),
    "share_location": "Share my location",
    "find_ask": (
        "Share your location with the button below, or type a town or station, "
        "e.g. Sundbyberg or Göteborg central."
    ),
    "find_ask_sms": (
        "Write a town or station, e.g. Uppsala or Göteborg central, and I'll show free "
        "chargers there."
    ),
    "find_header": "Free chargers near {place}:",
    "find_header_here": "Free chargers near you:",
    "find_none_free": "No free connectors near {place} right now. These are the nearest:",
    "find_none_free_here": "No free connectors near you right now. These are the nearest:",
    "find_none_within": "No free chargers within {km} km of {place}. The nearest are:",
    "find_none_within_here": "No free chargers within {km} km of you. The nearest are:",
    "find_unknown_place": (
        "I can't find a place called {text}. Try a town, e.g. Uppsala, or share your location."
    ),
    "find_nothing": "I can't find any chargers you can use.",
    "find_filter_hint": "Only one connector type? Choose it below.",
    "find_all_types": "All types",
    "station_line": "{index}. {name}, {address}, {city} ({distance})",
    "availability": "{type} {kw}: {free} of {total} free",
    "price_short": "{price}/kWh",
    "price_short_minute": "+ {price}/min",
    "price_short_fee": "+ {price} start fee",
    "restricted_to": "Only for {groups}",
    "open_hours": "Open {hours}",
    "connector_info": "{station}\n{address}, {city}\nConnector {code}: {type}, up to {kw}",
    "price_header": "Price (incl. 25% VAT):",
    "price_energy": "Energy: {price} per kWh",
    "price_minute": "Time: {price} per minute",
    "price_fee": "Start fee: {price}",
    "price_idle": "Idle fee: {price} per minute, from {grace} min after the car stops charging",
    "price_no_idle": "No idle fee",
    "confirm_question": "Do you want to start charging?",
    "confirm_button": "Start charging",
    "cancel_button": "Cancel",
    "cancelled": "OK, nothing has been started.",
    "unknown_code": "I can't find a connector with the code {code}. Check the code on the sticker.",
    "refused_busy": "That connector is in use right now. Try another one, or type /find.",
    "refused_occupied": "That connector is in use right now. Try another one, or type /find.",
    "refused_faulted": "That connector has a fault and can't be used right now. Try another one.",
    "refused_unavailable": "That connector is out of service right now. Try another one.",
    "refused_offline": "The charger is not connected right now, so it can't be started.",
    "refused_unplaced": "This charger is not in service yet.",
    "refused_blocked": "Your account is blocked. Type /support and we'll help you.",
    "refused_id_tag_blocked": "Your charging tag is blocked. Type /support and we'll help you.",
    "refused_id_tag_expired": "Your charging tag has expired. Type /support and we'll help you.",
    "refused_members_only": "This charger is only for {groups}.",
    "refused_closed": "This charger is closed now. Opening hours: {hours}.",
    "refused_other": "Charging can't be started right now.",
    "pay_to_start": (
        "To start, {amount} is reserved on your card. You pay only what the charge costs and "
        "the rest is released. Pay within {minutes} minutes with the button below; the charger "
        "starts as soon as the payment is done."
    ),
    "pay_button": "Pay",
    "payment_unavailable": (
        "Card payment is not working right now, so nothing was started. Try again in a while "
        "or type /support."
    ),
    "failed_payment_expired": (
        "The payment was not completed in time, so the charger was not started. Nothing was "
        "taken from your card. Scan the code again to try again."
    ),
    "failed_payment_canceled": (
        "The payment was cancelled, so the charger was not started. Nothing was taken from "
        "your card."
    ),
    "failed_payment_cancelled": (
        "The payment was cancelled, so the charger was not started. No money was taken from "
        "your card or held on it."
    ),
    "hold_released": "The amount reserved on your card has been released.",
    "payment_captured": "Paid by card: {amount}. Thank you!",
    "payment_uncollected": (
        "There was a problem with the payment for your charge: it cost more than the amount "
        "reserved. {taken} was taken from your card; {owed} is still owed; support will "
        "contact you."
    ),
    "hold_cap_reached": (
        "Charging is being stopped now: it costs {cost} and is nearing the {hold} reserved on "
        "your card. No more than the amount reserved can be taken, so we stop in time. To "
        "charge more, start a new charge."
    ),
    "payment_uncollected_test": (
        "There was a problem with the payment for your charge: it cost more than the amount "
        "reserved. {taken} was taken from the test payment (no real money); {owed} is still "
        "owed; support will contact you."
    ),
    "hold_cap_passed": (
        "Charging is being stopped now: it already costs {cost}, more than the {hold} reserved "
        "on your card."
    ),
    "hold_cap_reached_test": (
        "Charging is being stopped now: it costs {cost} and is nearing the {hold} reserved by "
        "the test payment (no real money). No more than the amount reserved can be taken, so "
        "we stop in time. To charge more, start a new charge."
    ),
    "hold_cap_passed_test": (
        "Charging is being stopped now: it already costs {cost}, more than the {hold} reserved "
        "by the test payment (no real money)."
    ),
    "receipt_paid_card": "Paid by card: {amount}",
    "receipt_paid_test": "Paid by test payment (no real money): {amount}",
    "receipt_charge_card": "To be charged to your card: {amount}",
    "receipt_charge_test": "To be charged to the test payment (no real money): {amount}",
    "receipt_owed": "Still owed: {amount} (more than the {hold} reserved)",
    "receipt_saved_card": "Charged to your saved card: {amount}",
    "receipt_invoice": "Billed to your account: {amount}",
    "receipt_nothing_taken": "Nothing is taken from your card; the reservation is released.",
    "receipt_nothing_taken_test": (
        "Nothing is taken from the test payment (no real money); the reservation is released."
    ),
    "card_link": (
        "Save your card with the button below. Then you can start charging without paying "
        "each time; after every charge exactly its cost is taken from the card."
    ),
    "card_button": "Save card",
    "card_invoice_account": "Your account is paid by invoice; you don't need a card.",
    "card_missing": (
        "Your account pays with a saved card, but no card is saved yet. Type /card to save "
        "one, or /support."
    ),
    "price_energy_member": "Energy: {price} per kWh (your member price)",
    "prices_plans_side": (
        "Price plans side by side:\nPay as you go: no monthly fee, the station's price per "
        "kWh.\nMember: {fee} per month and {percent}% lower price per kWh{range}. Type /member "
        "to join."
    ),
    "prices_member_range": " (now {low} to {high} per kWh)",
    "member_link": (
        "Member plan: {fee} per month and {percent}% lower price per kWh. Subscribe with the "
        "button below; cancel any time."
    ),
    "member_button": "Become a member",
    "member_already": "You are already a member: the lower price per kWh applies to you.",
    "member_not_offered": "We have no member plan right now; you pay as you go.",
    "payment_not_ready": (
        "Paying by card right here in the chat is coming soon. For now, invoice accounts can "
        "charge. Type /support if you'd like one."
    ),
    "starting": "Starting the charger... I'll tell you when the power is flowing.",
    "start_rejected": (
        "The charger refused to start. Check that the cable is plugged in properly and try "
        "again. You have not been charged."
    ),
    "start_offline": "The charger lost its connection. Nothing was started or charged.",
    "start_timed_out": "The charger did not answer. You have not been charged. Try again soon.",
    "event_started": (
        "Charging has started at {station}. Type /status to follow it and /stop to end it."
    ),
    "failed_no_start_transaction": (
        "Charging never got going; maybe the cable wasn't plugged in. You have not been charged."
    ),
    "failed_rejected": "The charger refused to start. You have not been charged.",
    "failed_charger_offline": "The charger lost its connection. You have not been charged.",
    "failed_timed_out": "The charger did not answer. You have not been charged.",
    "failed_other": "Charging could not be completed. You have not been charged.",
    "event_charging_finished": (
        "Your car has stopped charging (probably full). End with /stop and please move the car "
        "so someone else can charge."
    ),
    "event_idle_soon": (
        "The idle fee of {price} per minute starts in {minutes} min. End with /stop and move "
        "the car."
    ),
    "status": (
        "Charging at {station}\nEnergy: {energy}\nPower: {power}\nTime: {duration}\n"
        "Cost so far: {cost}"
    ),
    "status_starting": "The charger at {station} is starting. I'll tell you when power flows.",
    "status_stopping": "Charging at {station} is ending. The receipt is on its way.",
    "status_none": "You have no charging in progress.",
    "stop_none": "You have no charging in progress to end.",
    "stop_not_started": "Charging hasn't started yet. Try again in a moment.",
    "stopping": "Ending your charging... The receipt is on its way.",
    "stop_failed": "The charger did not end the charging. Try again, or type /support.",
    "stop_offline": (
        "The charger is not connected, so I can't end it from here. End it at the charger, or "
        "type /support."
    ),
    "receipt_header": "Receipt: {station}\n{date}",
    "receipt_energy": "Energy: {energy} x {price} = {amount}",
    "receipt_time": "Time: {duration} x {price}/min = {amount}",
    "receipt_fee": "Start fee: {amount}",
    "receipt_idle": "Idle: {minutes} min x {price} = {amount}",
    "receipt_total": "Total: {total}\nincl. VAT {rate}%: {vat}",
    "receipt_duration": "Charging time: {duration}",
    "review_done": (
        "The operator has checked the meter reading of your charge at {station} on {date}: it "
        "is billed {amount} for {energy}."
    ),
    "review_done_owed": "{owed} of that was not taken from your card; support will contact you.",
    "receipt_under_review": (
        "The meter reading of this charge looks wrong, so the operator is checking it. So far "
        "you are billed {amount} for {energy}; nothing beyond that is charged before the check "
        "is done."
    ),
    "history_header": "Your latest sessions:",
    "history_line": "{date} {station}: {energy}, {cost}",
    "history_month_one": "{month}: 1 session, {energy}, total {cost}",
    "history_month": "{month}: {count} sessions, {energy}, total {cost}",
    "history_none": "You have no sessions yet.",
    "prices_intro": (
        "Prices are set per station and always shown before you start. All prices include 25% "
        "VAT. You pay for the energy (kr/kWh), sometimes time or a start fee, and an idle fee "
        "if the car stays after it has finished charging."
    ),
    "prices_plans": (
        "Price plans:\nPay as you go: pay per session.\nMember: a monthly fee and a lower price "
        "per kWh (coming soon)."
    ),
    "prices_single": "Right now: {price} per kWh.",
    "unknown_code_or_station": (
        "I can't find a connector or station called {code}. Type the code on the sticker, "
        "e.g. PRICE K7P3Q, or a station name."
    ),
    "prices_range": "Right now: {low} to {high} per kWh.",
    "prices_hint": "Type a connector code (e.g. /prices {code}) for the exact price there.",
    "faq_unsure": "Did you mean one of these?",
    "faq_none": "I'm afraid I can't answer that. Would you like to talk to a person?",
    "faq_none_of_these": "None of these",
    "support_button": "Talk to a person",
    "no_thanks": "No thanks",
    "no_thanks_reply": "OK! Write again if there's anything else.",
    "support_queued": (
        "You are now in line for our support. A colleague will answer here in the chat as soon "
        "as possible."
    ),
    "support_already": "You are already in line. A colleague will answer here soon.",
    "support_queued_closed": (
        "You are now in line for our support. We are closed right now; a colleague will answer "
        "here from {opening}."
    ),
    "support_already_closed": (
        "You are already in line. We are closed right now; a colleague will answer here from "
        "{opening}."
    ),
    "payment_problem": "There was a problem with the payment for your charge.",
    "opening_today": "{time} today",
    "opening_tomorrow": "{time} tomorrow",
    "opening_weekday": "{day} {time}",
    "day_mon": "Monday",
    "day_tue": "Tuesday",
    "day_wed": "Wednesday",
    "day_thu": "Thursday",
    "day_fri": "Friday",
    "day_sat": "Saturday",
    "day_sun": "Sunday",
    "language_choose": "Välj språk / Choose language",
    "language_set": "I'll write in English from now on.",
    "greeting_thanks": "You're welcome! Write again if there's anything else.",
    "test_payment_note": "DEMO: test payment, no real money.",
    "stale_choice": "That button no longer applies. Type /help to see what I can do.",
    "agent_holds": "A colleague from support will answer you here.",
    # SMS (bot/adapters/sms/): commands are words, choices are numbered.
    "sms_no_account": (
        "To charge by text you need an account paid by invoice or a saved card. Write "
        "SUPPORT and we'll help you get one. Nothing has been started."
    ),
    "sms_choose_one": "Reply 1.",
    "sms_choose": "Reply with a number 1-{n}.",
    "sms_more": "To continue, reply MORE",
    "sms_no_more": "There is nothing more to show. Write MENU for all commands.",
    "sms_stopp_hint": (
        "Want to end your charging? Write FINISH. Don't want any more texts from us? Write STOP."
    ),
    "sms_menu": (
        "Text commands:\n"
        "CHARGE <code> - start charging\n"
        "FINISH - end your charging\n"
        "STATUS - how your charging is going\n"
        "NEAR <place> - free chargers\n"
        "PRICE <code> - the price at a connector\n"
        "HISTORY - your sessions\n"
        "SUPPORT - talk to a person\n"
        "SVENSKA - switch language\n"
        "Reply with a number to numbered choices, MORE to continue. Questions work too."
    ),
    "sms_error": "Something went wrong on my side. Please try again in a moment, or write SUPPORT.",
    # Understanding free text (bot/understanding.py, bot/flows/intents.py)
    "welcome_sms": (
        "Hi {name}! I'm chargebot. Text the code on the connector's sticker, e.g. CHARGE "
        "K7P3Q, to charge, or NEAR and a town for free chargers. MENU shows everything I "
        "can do."
    ),
    "numbers_no_menu": (
        "A number answers a list of choices, and there is none open now. Write what you "
        "want to do, e.g. STATUS or NEAR Uppsala, or MENU for everything I can do."
    ),
    "start_ask": (
        "Scan the QR code on the connector, or type the code on its sticker (5 characters), "
        "e.g. CHARGE K7P3Q."
    ),
    "yes_nothing_asked": "OK! What can I help you with? Write MENU for everything I can do.",
    "stop_kept": "OK, charging continues.",
    "stop_confirm": "Do you want to end your charging at {station} now?",
    "stop_confirm_button": "Yes, end it",
    "no_button": "No",
    "intent_which": "What would you like to do?",
    "intent_find": "Find free chargers",
    "intent_start": "Start charging",
    "intent_stop": "End my charging",
    "intent_status": "How my charging is going",
    "intent_history": "My sessions",
    "intent_prices": "Prices",
    "intent_card": "Save a card",
    "intent_member": "Become a member",
    "intent_language": "Switch language",
    "intent_support": "Talk to a person",
    "intent_help": "Everything I can do",
    "intent_greeting": "Say hello",
    "intent_thanks": "Say thanks",
    "intent_yes": "Yes",
    "intent_no": "No",
    "sms_optout_hint": "Don't want any more texts from us? Write STOP.",
    "faq_here_idle_fee": (
        "Here at {station}: you have {grace} min after the car stops charging to move it, "
        "then the idle fee is {price} per minute."
    ),
    "faq_here_no_idle_fee": "Here at {station} there is no idle fee.",
    "faq_here_prices": "Where you are charging now, {station}:",
    "agent_released": (
        "You're chatting with chargebot again. Write MENU for everything I can do, or "
        "SUPPORT to reach a person again."
    ),
    # reservations and the queue (bot/flows/reserve.py)
    "reserve_button": "Reserve for {minutes} min",
    "reserve_terms": "You can reserve this connector for {minutes} minutes{fee}.",
    "reserve_fee": " for {fee}, added to the charge that uses the reservation",
    "reserve_ask": (
        "Which connector do you want to reserve? Type RESERVE and the code on the sticker, "
        "e.g. RESERVE K7P3Q."
    ),
    "reserved": (
        "Reserved: connector {code} at {station} is held for you until {until} ({minutes} "
        "min){fee}. "
        "Start with the button or type CHARGE {code} when you get there. Type UNBOOK to "
        "release it."
    ),
    "reserved_fee": ". A reservation fee of {fee} is added to the charge",
    "reserve_refused": "The charger could not hold the connector ({status}). Try another one.",
    "reserve_offline": (
        "The charger isn't answering right now, so the connector couldn't be reserved."
    ),
    "refused_reservations_off": "Connectors can't be reserved at this station.",
    "refused_has_reservation": "You already have a reservation. Type UNBOOK to release it first.",
    "refused_reserved": (
        "That connector is reserved for someone else right now. Try another one, or type "
        "QUEUE {code} to join the queue."
    ),
    "reservation_cancelled": (
        "Your reservation is cancelled. The connector is free for others again."
    ),
    "reservation_none": "You have no reservation.",
    "reservation_cancel_failed": (
        "The charger isn't answering right now. The reservation ends by itself when its time is up."
    ),
    "queue_button": "Join the queue",
    "queue_offer": "All connectors busy? Type QUEUE {code} and I'll tell you when one frees up.",
    "queue_ask": (
        "Which station do you want to queue for? Type QUEUE and the code of a connector "
        "there, e.g. QUEUE K7P3Q."
    ),
    "queue_joined": (
        "You're in the queue at {station}, number {position}. I'll write here when a connector "
        "frees up, and you'll then have {minutes} minutes to start. Type LEAVE QUEUE to leave."
    ),
    "queue_place": "You're in the queue at {station}, number {position}.",
    "queue_offered_now": (
        "It's your turn at {station}: connector {code} is held for you. Type CHARGE {code} to"
        " start."
    ),
    "queue_turn": (
        "Your turn! Connector {code} at {station} is free and held for you for {minutes} minutes. "
        "Type CHARGE {code} to start, or LEAVE QUEUE if you don't need it."
    ),
    "queue_lapsed": (
        "Time ran out, so the connector at {station} went to the next in line. Type QUEUE and"
        " a code to queue again."
    ),
    "queue_left": "You've left the queue.",
    "queue_none": "You're not in any queue.",
    "queue_not_needed": (
        "There's a free connector at {station} right now: {code}. Type CHARGE {code} to start."
    ),
    "receipt_reservation": "Reservation fee: {amount}",
    "intent_reserve": "Reserve a connector",
    "intent_unreserve": "Cancel my reservation",
    "intent_queue": "Join the queue",
    "intent_leave_queue": "Leave the queue",
}
