"""Svenska. Plain GSM-7 text only: no emoji, curly quotes or long dashes (SMS reads it too)."""

STRINGS: dict[str, str] = {
    "welcome": (
        "Hej {name}! Jag är chargebot. Skanna QR-koden på en laddare eller skriv uttagets kod "
        "för att ladda. Dela din position så visar jag lediga laddare nära dig. /help visar allt "
        "jag kan."
    ),
    "help": (
        "Det här kan jag:\n"
        "/find - lediga laddare nära dig (dela position eller skriv en ort)\n"
        "/start <kod> - ladda vid ett uttag (eller skriv bara koden)\n"
        "/status - hur laddningen går\n"
        "/stop - avsluta din laddning\n"
        "/history - dina laddningar och månadens summa\n"
        "/prices - våra priser\n"
        "/support - prata med en människa\n"
        "/language - byt språk (English)\n"
        "Du kan också ställa en fråga med egna ord."
    ),
    "share_location": "Dela min position",
    "find_ask": (
        "Dela din position med knappen nedan, eller skriv en ort eller station, "
        "t.ex. Sundbyberg eller Göteborg central."
    ),
    "find_ask_sms": (
        "Skriv en ort eller station, t.ex. Uppsala eller Göteborg central, så visar jag "
        "lediga laddare där."
    ),
    "find_header": "Lediga laddare nära {place}:",
    "find_header_here": "Lediga laddare nära dig:",
    "find_none_free": "Inga lediga uttag nära {place} just nu. Här är de närmaste:",
    "find_none_free_here": "Inga lediga uttag nära dig just nu. Här är de närmaste:",
    "find_none_within": "Inga lediga laddare inom {km} km från {place}. Närmast finns:",
    "find_none_within_here": "Inga lediga laddare inom {km} km från dig. Närmast finns:",
    "find_unknown_place": (
        "Jag hittar ingen plats som heter {text}. Prova en ort, t.ex. Uppsala, eller dela din "
        "position."
    ),
    "find_nothing": "Jag hittar inga laddare som du kan använda.",
    "find_filter_hint": "Bara en kontakttyp? Välj den nedan.",
    "find_all_types": "Alla typer",
    "station_line": "{index}. {name}, {address}, {city} ({distance})",
    "availability": "{type} {kw}: {free} av {total} lediga",
    "price_short": "{price}/kWh",
    "price_short_minute": "+ {price}/min",
    "price_short_fee": "+ {price} startavgift",
    "restricted_to": "Endast för {groups}",
    "open_hours": "Öppet {hours}",
    "connector_info": "{station}\n{address}, {city}\nUttag {code}: {type}, upp till {kw}",
    "price_header": "Pris (inkl. 25 % moms):",
    "price_energy": "Energi: {price} per kWh",
    "price_minute": "Tid: {price} per minut",
    "price_fee": "Startavgift: {price}",
    "price_idle": (
        "Tomgångsavgift: {price} per minut, från {grace} min efter att bilen slutat ladda"
    ),
    "price_no_idle": "Ingen tomgångsavgift",
    "confirm_question": "Vill du starta laddningen?",
    "confirm_button": "Starta laddningen",
    "cancel_button": "Avbryt",
    "cancelled": "Okej, inget har startats.",
    "unknown_code": "Jag hittar inget uttag med koden {code}. Kontrollera koden på dekalen.",
    "refused_busy": "Uttaget används just nu. Prova ett annat uttag, eller skriv /find.",
    "refused_occupied": "Uttaget används just nu. Prova ett annat uttag, eller skriv /find.",
    "refused_faulted": "Uttaget har ett fel och kan inte användas just nu. Prova ett annat uttag.",
    "refused_unavailable": "Uttaget är ur drift just nu. Prova ett annat uttag.",
    "refused_offline": "Laddaren har ingen uppkoppling just nu, så den går inte att starta.",
    "refused_unplaced": "Laddaren är inte i drift än.",
    "refused_blocked": "Ditt konto är spärrat. Skriv /support så hjälper vi dig.",
    "refused_id_tag_blocked": "Din laddbricka är spärrad. Skriv /support så hjälper vi dig.",
    "refused_id_tag_expired": "Din laddbricka har gått ut. Skriv /support så hjälper vi dig.",
    "refused_members_only": "Den här laddaren är bara för {groups}.",
    "refused_closed": "Laddaren är stängd nu. Öppettider: {hours}.",
    "refused_other": "Det går inte att starta laddningen just nu.",
    "pay_to_start": (
        "För att starta reserveras {amount} på ditt kort. Du betalar bara vad laddningen "
        "kostar, resten släpps. Betala inom {minutes} minuter med knappen nedan, så startar "
        "laddaren så fort betalningen är klar."
    ),
    "pay_button": "Betala",
    "payment_unavailable": (
        "Kortbetalningen fungerar inte just nu, så inget har startats. Försök igen om en "
        "stund eller skriv /support."
    ),
    "failed_payment_expired": (
        "Betalningen blev inte klar i tid, så laddaren startades inte. Inget har dragits från "
        "ditt kort. Skanna koden igen för att försöka på nytt."
    ),
    "failed_payment_canceled": (
        "Betalningen avbröts, så laddaren startades inte. Inget har dragits från ditt kort."
    ),
    "failed_payment_cancelled": (
        "Betalningen avbröts, så laddaren startades inte. Inget belopp har dragits eller "
        "reserverats."
    ),
    "hold_released": "Beloppet som reserverades på ditt kort har släppts.",
    "payment_captured": "Betalt med kort: {amount}. Tack!",
    "payment_uncollected": (
        "Det blev ett problem med betalningen för din laddning: den kostade mer än det "
        "reserverade beloppet. {taken} har dragits från ditt kort; {owed} är fortfarande "
        "obetalt; supporten kontaktar dig."
    ),
    "hold_cap_reached": (
        "Laddningen stoppas nu: den kostar {cost} och närmar sig de {hold} som reserverades "
        "på ditt kort. Mer än det reserverade beloppet kan inte dras, så vi stoppar i tid. "
        "Vill du ladda mer, starta en ny laddning."
    ),
    "payment_uncollected_test": (
        "Det blev ett problem med betalningen för din laddning: den kostade mer än det "
        "reserverade beloppet. {taken} har dragits från testbetalningen (inga riktiga pengar); "
        "{owed} är fortfarande obetalt; supporten kontaktar dig."
    ),
    "hold_cap_passed": (
        "Laddningen stoppas nu: den kostar redan {cost}, mer än de {hold} som reserverades på "
        "ditt kort."
    ),
    "hold_cap_reached_test": (
        "Laddningen stoppas nu: den kostar {cost} och närmar sig de {hold} som reserverades "
        "med testbetalningen (inga riktiga pengar). Mer än det reserverade beloppet kan inte "
        "dras, så vi stoppar i tid. Vill du ladda mer, starta en ny laddning."
    ),
    "hold_cap_passed_test": (
        "Laddningen stoppas nu: den kostar redan {cost}, mer än de {hold} som reserverades med "
        "testbetalningen (inga riktiga pengar)."
    ),
    "receipt_paid_card": "Betalt med kort: {amount}",
    "receipt_paid_test": "Betalt med testbetalning (inga riktiga pengar): {amount}",
    "receipt_charge_card": "Dras från ditt kort: {amount}",
    "receipt_charge_test": "Dras från testbetalningen (inga riktiga pengar): {amount}",
    "receipt_owed": "Obetalt: {amount} (mer än de {hold} som reserverades)",
    "receipt_saved_card": "Dras från sparat kort: {amount}",
    "receipt_invoice": "Faktureras: {amount}",
    "receipt_nothing_taken": "Inget dras från ditt kort; reservationen släpps.",
    "receipt_nothing_taken_test": (
        "Inget dras från testbetalningen (inga riktiga pengar); reservationen släpps."
    ),
    "card_link": (
        "Spara ditt kort med knappen nedan. Sedan kan du starta laddningen utan att betala "
        "varje gång; efter varje laddning dras exakt vad den kostade från kortet."
    ),
    "card_button": "Spara kort",
    "card_invoice_account": "Ditt konto betalas med faktura; du behöver inget kort.",
    "card_missing": (
        "Ditt konto betalar med sparat kort, men inget kort är sparat ännu. Skriv /card för "
        "att spara ett, eller /support."
    ),
    "price_energy_member": "Energi: {price} per kWh (ditt medlemspris)",
    "prices_plans_side": (
        "Prisplaner sida vid sida:\nLöpande: ingen månadsavgift, stationens pris per kWh."
        "\nMedlem: {fee} per månad och {percent} % lägre pris per kWh{range}. Skriv /member "
        "för att bli medlem."
    ),
    "prices_member_range": " (just nu {low} till {high} per kWh)",
    "member_link": (
        "Medlemskap: {fee} per månad och {percent} % lägre pris per kWh. Teckna med knappen "
        "nedan; du kan säga upp när du vill."
    ),
    "member_button": "Bli medlem",
    "member_already": "Du är redan medlem: det lägre kWh-priset gäller dig.",
    "member_not_offered": "Vi har ingen medlemsplan just nu; du betalar per laddning.",
    "payment_not_ready": (
        "Betalning med kort direkt i chatten kommer snart. Just nu kan konton med faktura "
        "ladda. Skriv /support om du vill ha ett sådant konto."
    ),
    "starting": "Startar laddaren... Jag säger till när strömmen börjar flöda.",
    "start_rejected": (
        "Laddaren sa nej till starten. Kontrollera att kabeln sitter i ordentligt och försök "
        "igen. Inget har debiterats."
    ),
    "start_offline": "Laddaren tappade uppkopplingen. Inget har startats eller debiterats.",
    "start_timed_out": "Laddaren svarade inte. Inget har debiterats. Försök igen om en stund.",
    "event_started": (
        "Laddningen har startat vid {station}. Skriv /status för att följa den och /stop för "
        "att avsluta."
    ),
    "failed_no_start_transaction": (
        "Laddningen kom aldrig igång, kanske var kabeln inte ansluten. Inget har debiterats."
    ),
    "failed_rejected": "Laddaren sa nej till starten. Inget har debiterats.",
    "failed_charger_offline": "Laddaren tappade uppkopplingen. Inget har debiterats.",
    "failed_timed_out": "Laddaren svarade inte. Inget har debiterats.",
    "failed_other": "Laddningen kunde inte genomföras. Inget har debiterats.",
    "event_charging_finished": (
        "Bilen har slutat ladda (troligen full). Avsluta med /stop och flytta gärna bilen så att "
        "någon annan kan ladda."
    ),
    "event_idle_soon": (
        "Om {minutes} min börjar tomgångsavgiften, {price} per minut. Avsluta med /stop och "
        "flytta bilen."
    ),
    "status": (
        "Laddning vid {station}\nEnergi: {energy}\nEffekt: {power}\nTid: {duration}\n"
        "Kostnad hittills: {cost}"
    ),
    "status_starting": "Laddaren vid {station} startar. Jag säger till när strömmen flödar.",
    "status_stopping": "Laddningen vid {station} avslutas. Kvittot kommer strax.",
    "status_none": "Du har ingen pågående laddning.",
    "stop_none": "Du har ingen pågående laddning att avsluta.",
    "stop_not_started": "Laddningen har inte kommit igång än. Försök igen om en liten stund.",
    "stopping": "Avslutar laddningen... Kvittot kommer strax.",
    "stop_failed": "Laddaren avslutade inte laddningen. Försök igen, eller skriv /support.",
    "stop_offline": (
        "Laddaren har ingen uppkoppling, så jag kan inte avsluta härifrån. Avsluta vid "
        "laddaren, eller skriv /support."
    ),
    "receipt_header": "Kvitto: {station}\n{date}",
    "receipt_energy": "Energi: {energy} x {price} = {amount}",
    "receipt_time": "Tid: {duration} x {price}/min = {amount}",
    "receipt_fee": "Startavgift: {amount}",
    "receipt_idle": "Tomgång: {minutes} min x {price} = {amount}",
    "receipt_total": "Totalt: {total}\nvarav moms {rate} %: {vat}",
    "receipt_duration": "Laddtid: {duration}",
    "review_done": (
        "Operatören har kontrollerat mätarvärdet för din laddning vid {station} den {date}: den "
        "debiteras {amount} för {energy}."
    ),
    "review_done_owed": "{owed} av det har inte dragits från ditt kort; supporten kontaktar dig.",
    "receipt_under_review": (
        "Mätarvärdet för den här laddningen ser fel ut, så operatören kontrollerar det. Hittills "
        "debiteras du {amount} för {energy}; inget mer debiteras innan kontrollen är klar."
    ),
    "history_header": "Dina senaste laddningar:",
    "history_line": "{date} {station}: {energy}, {cost}",
    "history_month_one": "{month}: 1 laddning, {energy}, totalt {cost}",
    "history_month": "{month}: {count} laddningar, {energy}, totalt {cost}",
    "history_none": "Du har inga laddningar än.",
    "prices_intro": (
        "Priset sätts per station och visas alltid innan du startar. Alla priser är inkl. "
        "25 % moms. Du betalar för energin (kr/kWh), ibland tid eller en startavgift, och en "
        "tomgångsavgift om bilen står kvar efter att den laddat klart."
    ),
    "prices_plans": (
        "Prisplaner:\nLöpande: betala per laddning.\nMedlem: månadsavgift och lägre kWh-pris "
        "(kommer snart)."
    ),
    "prices_single": "Just nu: {price} per kWh.",
    "unknown_code_or_station": (
        "Jag hittar inget uttag eller någon station som heter {code}. Skriv koden på "
        "dekalen, t.ex. PRIS K7P3Q, eller ett stationsnamn."
    ),
    "prices_range": "Just nu: {low} till {high} per kWh.",
    "prices_hint": "Skriv en uttagskod (t.ex. /prices {code}) för exakt pris vid ett uttag.",
    "faq_unsure": "Menade du något av det här?",
    "faq_none": "Det kan jag tyvärr inte svara på. Vill du prata med en människa?",
    "faq_none_of_these": "Inget av dessa",
    "support_button": "Prata med en människa",
    "no_thanks": "Nej tack",
    "no_thanks_reply": "Okej! Skriv gärna igen om det är något annat.",
    "support_queued": (
        "Du står nu i kö till vår support. En kollega svarar här i chatten så snart som möjligt."
    ),
    "support_already": "Du står redan i kö. En kollega svarar här så snart som möjligt.",
    "support_queued_closed": (
        "Du står nu i kö till vår support. Vi har stängt just nu; en kollega svarar här från "
        "{opening}."
    ),
    "support_already_closed": (
        "Du står redan i kö. Vi har stängt just nu; en kollega svarar här från {opening}."
    ),
    "payment_problem": "Det blev ett problem med betalningen för din laddning.",
    "opening_today": "kl. {time} i dag",
    "opening_tomorrow": "kl. {time} i morgon",
    "opening_weekday": "{day} kl. {time}",
    "day_mon": "måndag",
    "day_tue": "tisdag",
    "day_wed": "onsdag",
    "day_thu": "torsdag",
    "day_fri": "fredag",
    "day_sat": "lördag",
    "day_sun": "söndag",
    "language_choose": "Välj språk / Choose language",
    "language_set": "Nu skriver jag på svenska.",
    "greeting_thanks": "Varsågod! Skriv gärna igen om det är något mer.",
    "test_payment_note": "DEMO: testbetalning, inga riktiga pengar.",
    "stale_choice": "Den knappen gäller inte längre. Skriv /help för att se vad jag kan.",
    "agent_holds": "En kollega från supporten svarar dig här.",
    # SMS (bot/adapters/sms/): commands are words, choices are numbered.
    "sms_no_account": (
        "För att ladda via sms behöver du ett konto med faktura eller sparat kort. Skriv "
        "SUPPORT så hjälper vi dig att skaffa ett. Inget har startats."
    ),
    "sms_choose_one": "Svara 1.",
    "sms_choose": "Svara med en siffra 1-{n}.",
    "sms_more": "Fortsättning: svara MER",
    "sms_no_more": "Det finns inget mer att visa. Skriv MENY för alla kommandon.",
    "sms_stopp_hint": (
        "Vill du avsluta din laddning? Skriv AVSLUTA. Vill du inte få fler sms från oss? "
        "Skriv STOP."
    ),
    "sms_menu": (
        "Sms-kommandon:\n"
        "LADDA <kod> - starta laddning\n"
        "AVSLUTA - avsluta din laddning\n"
        "STATUS - hur laddningen går\n"
        "NÄRA <plats> - lediga laddare\n"
        "PRIS <kod> - priset vid ett uttag\n"
        "HISTORIK - dina laddningar\n"
        "SUPPORT - prata med en människa\n"
        "ENGLISH - byt språk\n"
        "Svara med en siffra på numrerade val, MER för fortsättning. Frågor går också bra."
    ),
    "sms_error": "Något gick fel hos mig. Försök igen om en liten stund, eller skriv SUPPORT.",
    # Understanding free text (bot/understanding.py, bot/flows/intents.py)
    "welcome_sms": (
        "Hej {name}! Jag är chargebot. Skriv koden på uttagets dekal, t.ex. LADDA K7P3Q, "
        "för att ladda, eller NÄRA och en ort för lediga laddare. MENY visar allt jag kan."
    ),
    "numbers_no_menu": (
        "En siffra svarar på en lista med val, och just nu finns ingen. Skriv vad du vill "
        "göra, t.ex. STATUS eller NÄRA Uppsala, eller MENY för allt jag kan."
    ),
    "start_ask": (
        "Skanna QR-koden på uttaget, eller skriv koden på dekalen (5 tecken), t.ex. LADDA K7P3Q."
    ),
    "yes_nothing_asked": "Okej! Vad kan jag hjälpa dig med? Skriv MENY för allt jag kan.",
    "stop_kept": "Okej, laddningen fortsätter.",
    "stop_confirm": "Vill du avsluta laddningen vid {station} nu?",
    "stop_confirm_button": "Ja, avsluta",
    "no_button": "Nej",
    "intent_which": "Vad vill du göra?",
    "intent_find": "Hitta lediga laddare",
    "intent_start": "Börja ladda",
    "intent_stop": "Avsluta laddningen",
    "intent_status": "Se hur laddningen går",
    "intent_history": "Mina laddningar",
    "intent_prices": "Priser",
    "intent_card": "Spara kort",
    "intent_member": "Bli medlem",
    "intent_language": "Byt språk",
    "intent_support": "Prata med en människa",
    "intent_help": "Allt jag kan",
    "intent_greeting": "Hälsa",
    "intent_thanks": "Tacka",
    "intent_yes": "Ja",
    "intent_no": "Nej",
    "sms_optout_hint": "Vill du inte få fler sms från oss? Skriv STOP.",
    "faq_here_idle_fee": (
        "Här vid {station}: {grace} min efter att bilen slutat ladda är gratis, sedan "
        "kostar det {price} per minut att stå kvar."
    ),
    "faq_here_no_idle_fee": "Här vid {station} finns ingen blockeringsavgift.",
    "faq_here_prices": "Där du laddar nu, {station}:",
    "agent_released": (
        "Du pratar med chargebot igen. Skriv MENY för allt jag kan, eller SUPPORT om du "
        "vill prata med en människa igen."
    ),
    # reservations and the queue (bot/flows/reserve.py)
    "reserve_button": "Reservera i {minutes} min",
    "reserve_terms": "Du kan reservera uttaget i {minutes} minuter{fee}.",
    "reserve_fee": " för {fee}, som läggs på laddningen som använder reservationen",
    "reserve_ask": (
        "Vilket uttag vill du reservera? Skriv RESERVERA och koden på dekalen, t.ex. "
        "RESERVERA K7P3Q."
    ),
    "reserved": (
        "Reserverat: uttag {code} vid {station} hålls åt dig till {until} ({minutes} min){fee}. "
        "Starta med knappen eller skriv LADDA {code} när du är framme. Skriv AVBOKA för att "
        "släppa det."
    ),
    "reserved_fee": ". Reservationsavgift {fee} läggs på laddningen",
    "reserve_refused": "Laddaren kunde inte hålla uttaget ({status}). Prova ett annat uttag.",
    "reserve_offline": "Laddaren svarar inte just nu, så uttaget kunde inte reserveras.",
    "refused_reservations_off": "Det går inte att reservera uttag på den här stationen.",
    "refused_has_reservation": (
        "Du har redan en reservation. Skriv AVBOKA för att släppa den först."
    ),
    "refused_reserved": (
        "Uttaget är reserverat för någon annan just nu. Prova ett annat uttag, eller skriv KÖ"
        " {code} för att ställa dig i kö."
    ),
    "reservation_cancelled": "Reservationen är avbokad. Uttaget är ledigt för andra igen.",
    "reservation_none": "Du har ingen reservation.",
    "reservation_cancel_failed": (
        "Laddaren svarar inte just nu. Reservationen släpps av sig själv när tiden gått ut."
    ),
    "queue_button": "Ställ mig i kö",
    "queue_offer": "Alla uttag är upptagna? Skriv KÖ {code} så säger jag till när ett blir ledigt.",
    "queue_ask": (
        "Vilken station vill du köa till? Skriv KÖ och koden på ett uttag där, t.ex. KÖ K7P3Q."
    ),
    "queue_joined": (
        "Du står i kö vid {station}, plats {position}. Jag skriver här när ett uttag blir "
        "ledigt, och då har du {minutes} minuter på dig att starta. Skriv LÄMNA KÖN för att "
        "gå ur kön."
    ),
    "queue_place": "Du står i kö vid {station}, plats {position}.",
    "queue_offered_now": (
        "Det är din tur vid {station}: uttag {code} hålls åt dig. Skriv LADDA {code} för att "
        "starta."
    ),
    "queue_turn": (
        "Din tur! Uttag {code} vid {station} är ledigt och hålls åt dig i {minutes} minuter. "
        "Skriv LADDA {code} för att starta, eller LÄMNA KÖN om du inte behöver det."
    ),
    "queue_lapsed": (
        "Tiden gick ut, så uttaget vid {station} gick till nästa i kön. Skriv KÖ och en kod "
        "för att ställa dig i kö igen."
    ),
    "queue_left": "Du har lämnat kön.",
    "queue_none": "Du står inte i någon kö.",
    "queue_not_needed": (
        "Det finns ett ledigt uttag vid {station} just nu: {code}. Skriv LADDA {code} för att"
        " starta."
    ),
    "receipt_reservation": "Reservationsavgift: {amount}",
    "intent_reserve": "Reservera ett uttag",
    "intent_unreserve": "Avboka min reservation",
    "intent_queue": "Ställ mig i kö",
    "intent_leave_queue": "Lämna kön",
}
