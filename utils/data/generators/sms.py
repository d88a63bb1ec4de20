"""A seeded generator of SMS-like messages, spam and ham.

Real SMS corpora cannot ship with the kit, so the offline SMS dataset is written by this generator:
many message shapes per class (77 ham, 52 spam), filled from word lists, then passed through texting
habits (abbreviations, dropped capitals, typos, emoticons). Hard cases are there on purpose: ham
that talks about money, prizes or codes; spam that sounds like a friend. The same seed gives the
same messages.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable

NAMES = [
    "Jess",
    "Tom",
    "Mum",
    "Dad",
    "Sam",
    "Priya",
    "Ali",
    "Kate",
    "Dan",
    "Mo",
    "Lucy",
    "Ben",
    "Chloe",
    "Raj",
    "Gemma",
    "Josh",
    "Nat",
    "Aunty Sue",
    "Grandma",
    "Steve",
    "Ellie",
    "Kwame",
]
PLACES = [
    "the station",
    "tesco",
    "the pub",
    "uni",
    "the gym",
    "work",
    "the library",
    "costa",
    "the bus stop",
    "nandos",
    "the car park",
    "ur mums",
    "the cinema",
    "the office",
    "church",
    "the park",
    "mcdonalds",
    "the hospital",
    "the shop",
    "town",
]
TIMES = [
    "7",
    "half 6",
    "8ish",
    "10 mins",
    "2nite",
    "tmrw morning",
    "after work",
    "lunch",
    "5.30",
    "about 9",
    "sat",
    "sunday",
    "later",
    "in an hour",
    "noon",
    "quarter past 4",
]
FOODS = [
    "pizza",
    "curry",
    "chips",
    "a kebab",
    "sushi",
    "pasta",
    "a roast",
    "tacos",
    "noodles",
    "fish n chips",
    "burgers",
]
THINGS = [
    "charger",
    "keys",
    "umbrella",
    "jacket",
    "wallet",
    "headphones",
    "notes",
    "laptop",
    "bank card",
    "glasses",
    "lunchbox",
    "book",
]
ACTIVITIES = [
    "footy",
    "the match",
    "revision",
    "the gig",
    "bingo",
    "karaoke",
    "the quiz",
    "band practice",
    "yoga",
    "the party",
    "choir",
    "netball",
]
FEELINGS = [
    "knackered",
    "so bored",
    "well tired",
    "starving",
    "buzzing",
    "gutted",
    "stressed",
    "fine thx",
    "a bit ill",
    "soaked",
]
PRIZES = [
    "£1000 cash",
    "£2,000 prize",
    "a brand new iPhone",
    "£500 Tesco voucher",
    "a luxury cruise",
    "£250 Amazon gift card",
    "$1,000 Walmart gift card",
    "a Nokia camera phone",
    "£5000 cash or a holiday",
    "2 FREE flights",
    "a Sony 4K TV",
    "£350 award",
]
BRANDS = ["Orange", "Vodafone", "O2", "EE", "Three", "T-Mobile"]
BANKS = ["HSBC", "Barclays", "Lloyds", "NatWest", "Santander", "Chase", "Monzo"]
COURIERS = ["Royal Mail", "DPD", "Evri", "UPS", "USPS", "DHL", "Hermes"]
DOMAINS = [
    "bit.ly/3xQ9pL",
    "tinyurl.com/claimnow7",
    "win-uk-prize.com",
    "royalmail-redelivery.info",
    "secure-acc-verify.net",
    "txt-dates.co.uk",
    "ringtones4u.mobi",
    "free-spins247.com",
    "parcel-fee.help",
    "refund-hmrc-gov.uk.co",
    "cryptoboost.io/join",
    "goo.gl/Xk2mTq",
]


def _premium_number(rng: random.Random) -> str:
    return rng.choice(["0906", "0907", "0871", "0905", "0800", "0909"]) + "".join(
        rng.choice("0123456789") for _ in range(7)
    )


def _short_code(rng: random.Random) -> str:
    return str(rng.choice([80082, 87121, 85233, 69669, 88066, 62468, 83355, 87575, 81010, 61610]))


def _price(rng: random.Random, spammy: bool) -> str:
    if spammy:
        return rng.choice(
            [
                "£1.50/msg",
                "150p/msg",
                "£3/wk",
                "25p",
                "£4.50/wk",
                "$2.99/mo",
                "150ppm",
                "£1/min",
                "10p/min",
                "50p",
            ]
        )
    return rng.choice(["£20", "£5", "a tenner", "£12.50", "$40", "£60", "30 quid", "£8", "£150"])


def _code(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(2)) + str(
        rng.randint(100, 999)
    )


HAM_TEMPLATES = [
    "Running late, be there in {time}. Sorry!",
    "where r u? im outside {place}",
    "Can you pick up {food} on the way home? I'll pay u back",
    "Ok see you at {place} at {time} x",
    "Did u leave ur {thing} at mine? Found it under the sofa lol",
    "{name} says hi. Are we still on for {activity} {time}?",
    "I'm {feeling}. Gonna skip {activity} tonight, sorry",
    "Happy birthday!!! Hope u have an amazing day xxx",
    "Can u call me when u get a sec, nothing serious",
    "Just got home. That was a long day",
    "Mum wants to know if ur coming for dinner sunday",
    "Hey, can u send me the notes from today's lecture pls?",
    "Thanks for {time}, had a really good time :)",
    "Dont forget to take the bins out, it's collection day tmrw",
    "Train's delayed again. Probably {time} now",
    "U still owe me {price} from {activity} btw haha",
    "Rent is {price} each this month, can u transfer by friday?",
    "I won {money_small} on the scratch card lol, drinks on me at {place}",
    "We came 2nd in {activity}! Won a {price} voucher, not bad",
    "Your appointment at the dentist is confirmed for {day} at {clock}. Reply C to cancel.",
    "Hi {name}, the meeting has moved to {clock} in room 4. Bring the figures pls",
    "Your code for the gym locker is {digits}. Don't tell {name} haha",
    "Got the job!!! Start on {day}. Can't believe it",
    "Is it ok if {name} stays over {day}?",
    "Sorry I missed ur call, was in {place}. Ring u back in {time}",
    "Lol that video u sent me is hilarious",
    "Can u feed the cat tmrw? Key is under the pot",
    "I've transferred {price} for the tickets, check ur account",
    "Prize for the raffle at church is a hamper, I bought 3 tickets for {price}",
    "Good luck in ur exam tmrw! U'll smash it",
    "The {courier} guy left ur parcel with next door",
    "Yeah I'm free {day}. Fancy {food}?",
    "Just checking u got home safe x",
    "How much was the taxi? I'll send u half",
    "Ugh my phone bill is {price} this month, wtf",
    "ok",
    "On my way",
    "K. Call me when ur done at {place}",
    "Are you watching {activity}? Unbelievable",
    "Dad's car broke down again so I'm getting the bus",
    "Can't talk now, in a meeting. Text me",
    "Hiya, free to chat later? Miss u",
    "Don't worry about the money, pay me whenever",
    "Is {name} coming to {activity}? Need numbers by {day}",
    "Reminder: parents evening {day} at {clock}. Love Mum",
    "Cheers for lending me {price}, I'll sort u out payday",
    "Your {bank} card ending {digits4} was used for {price} at {shop}. If this was you, no action "
    "is needed.",
    "Hi it's {name}, new number! Save this one",
    "we won the quiz!! £50 bar tab, get down to {place}",
    "Gonna be at {place} til {time} if u wanna come",
    "Sorry, I'll call later",
    "Wat time u finish? Fancy {food}",
    "Thanks for the lift yesterday, owe u one",
    "Can u ask {name} if she's got my {thing}?",
    "Hey, are u around this weekend? Thinking of a trip to {place}",
    "Did u see the email from {name}? Call me",
    "Mum's birthday is {day}, shall we go halves on a present? About {price} each",
    "Sorry about earlier, I was in a mood. Love u x",
    "Bus is rammed, I'll be a bit late",
    "Can I borrow ur {thing} {day}? Mine's broken",
    "Lol no way. Who told u that?",
    "Just finished {activity}, absolutely {feeling}",
    "Doctor says it's just a cold, I'll be fine. Off work {day} tho",
    "Meeting at {clock} cancelled, they'll reschedule",
    "Pls remember the form for the school trip, it's {price}",
    "Won't be home for tea, eating at {place}",
    "Can u text me {name}'s number? Lost it",
    "Your table for 4 is booked for {clock} {day}. See you soon! Call us if you need to change it",
    "Hi, this is the surgery. Your prescription is ready to collect from {day}.",
    "Claimed my winnings from the office lottery, {money_small}. Pub?",
    "Bank transfer done, {price} for the holiday deposit. Ur turn next",
    "Great game last night! Same time next week?",
    "Thx for the birthday money grandma, gonna save it x",
    "Free tonight? Fancy watching a film at mine",
    "Call me back asap, it's about the car",
    "Parking is free after 6 so come whenever",
    "Hahaha that's class. Send me the pic",
]

SPAM_TEMPLATES = [
    "WINNER!! As a valued network customer you have been selected to receive a {prize}! To claim "
    "call {premium}. Claim code {code}. Valid 12 hours only.",
    "Congratulations! You've won {prize}. Text CLAIM to {short} now. T&Cs apply. {spam_price}",
    "URGENT! Your mobile number has been awarded {prize} in our weekly draw. Call {premium} from a "
    "landline. Box {digits} LS15HB",
    "FREE entry into our {prize} draw! Just text WIN to {short} to enter. 18+ only. {spam_price}",
    "Hey its {name}, remember me? been trying 2 reach u! Im lonely, call me on {premium} xx "
    "{spam_price}",
    "Hi hun! {name} here, saw ur profile & want 2 chat. Reply DATE to {short} 4 my pics ;-) "
    "{spam_price}",
    "Your {brand} account is due an upgrade! Get the latest phone FREE with camera. Call {premium} "
    "or reply YES to {short}",
    "Get the latest ringtones & games FREE! Txt TONE to {short}. {spam_price}. Txt STOP to end",
    "You have 1 new voicemail. Please call {premium} to listen. {spam_price}",
    "{bank}: we have detected unusual activity on your account. Verify your details at {domain} to "
    "avoid suspension.",
    "Your {courier} parcel could not be delivered due to unpaid shipping fee of {fee}. Pay now: "
    "{domain}",
    "HMRC: You are eligible for a tax refund of {refund}. Claim here {domain} within 24hrs",
    "Need cash fast? Loans from £100 to £5000, bad credit OK! Reply LOAN to {short} or visit "
    "{domain}",
    "Had an accident that wasn't your fault? You could be entitled to £3,750 compensation. Reply "
    "YES now",
    "Double your money in 7 days! Join our crypto club: {domain}. Limited spaces",
    "Hey! It's {name} from the survey, you've been chosen for a {prize}. Just answer 3 questions: "
    "{domain}",
    "Dear customer, you are owed {refund} in PPI. Reply CLAIM or STOP to opt out",
    "Txt MUSIC to {short} and get 10 FREE top chart tracks 2 ur phone every week! {spam_price} 16+",
    "u r a winner! ur number came up in the {brand} prize draw. call {premium} b4 midnite 2 claim "
    "{prize}",
    "Hi mum, this is my new number, I dropped my phone in the loo. Can u send me {fee} for a new "
    "one? Will pay u back",
    "SIX chances to win CASH! From 100 to 20,000 pounds. Txt CSH11 to {short}. Cost {spam_price}",
    "Private! Your 2024 account statement shows {points} un-redeemed bonus points. Call {premium} "
    "ID {code}",
    "Sunshine Quiz! Win a {prize}! Reply ANSWER to {short}. {spam_price} 18+",
    "We tried to contact you re your reply to our offer of a video handset? {spam_price} Call "
    "{premium}",
    "Last chance! Ur {prize} is waiting. Confirm ur address at {domain} now or lose it",
    "Hey babe, missing u... it's {name} ;) wanna meet up 2nite? Txt me at {short} {spam_price}",
    "FreeMsg: Your {brand} bill is lower than you think! Claim {refund} cashback, reply YES",
    "IMPORTANT: Your Netflix payment failed. Update your card at {domain} to keep watching",
    "Someone has a crush on u! Find out who, txt LUV to {short} {spam_price}",
    "Ur awarded a City Break and could WIN a {prize}! To claim call {premium} Code {code}",
    "Cash in your old phone 4 up to £300! Free envelope, txt SELL to {short}",
    "Thanks for your subscription to Ringtone Club! Ur mobile will be charged {spam_price}. Txt "
    "STOP to {short} to unsubscribe",
    "Hi {name2}, I'm a recruiter. Work from home, earn £300/day, no experience. WhatsApp me: "
    "{domain}",
    "Your Amazon order #{digits} for {prize} has shipped. Not you? Call {premium} to cancel",
    "Good news! You've been pre-approved for a credit card with £2,500 limit. Apply at {domain}",
    "Hi this is {name} from {brand} customer care, ur account is eligible 4 a loyalty reward of "
    "{prize}. Call {premium} now",
    "Exclusive offer: 3 months of unlimited data for only £1! Reply YES to {short}. T&C apply",
    "Your Apple ID has been locked. Verify now at {domain} or it will be deleted",
    "I have a business proposal for u worth $4.5 million. Reply with ur full name and bank details",
    "You've got a new match! See who likes u at {domain}. Msg rates apply",
    "Txt POLY to {short} for ur FREE polyphonic ringtone! {spam_price}. 18+",
    "Final notice: your car warranty is about to expire. Call {premium} to extend",
    "Santa's calling! Would ur little one like a call from Santa? Call {premium} {spam_price}",
    "Get 50% off ur next order with code {code}! Shop now at {domain}",
    "Bored? Singles in ur area want 2 chat. Txt CHAT to {short} {spam_price}",
    "ATTENTION: this is ur final attempt to claim ur {prize}. Call {premium} now! Box {digits}",
    "Hey! Long time no see ;) I've got a surprise for u, check it out {domain}",
    "Your parcel is on hold, please confirm your details: {domain}",
    "Win tickets to the cup final! Txt FOOTY to {short}. {spam_price}",
    "We have been trying to reach you about your recent claim. Reply CALL to speak to an advisor "
    "or STOP to opt out",
    "Want ur debt written off? New government scheme, up to 80% cleared. Reply INFO",
]

# Shapes that no shipped split uses: an instructor's private held-out file draws its messages from
# a secret choice of these (``utils.data.private_heldout``), so it is new in shape to every student.
RESERVED_HAM = [
    "Just landed! Can u grab me from {place}? Be there in {time}",
    "Can u lend me ur {thing} for {activity} {day}?",
    "Babysitter cancelled, can u have the kids {day}? I'll owe u big time",
    "Heating's broken again. Landlord says someone will come {day}",
    "Ur verification code for the library app is {digits4}. Don't share it with anyone.",
    "Found a tenner in my old coat lol. Best day ever",
    "{name} got engaged!!! Did u know??",
    "Match starts at {clock}, meet at {place} before?",
    "Your {courier} delivery is booked for {day} between {clock} and 6pm.",
    "Splitting the {food} bill, it's {price} each. Send when u can",
    "Stuck in traffic on the ring road, start without me",
    "Did u book the tickets for {activity}? They sell out fast",
    "Won the office sweepstake!! {money_small}, not bad for a quid",
    "Made way too much {food}, want some? Come round",
    "Are u awake? Can't sleep",
    "Power cut here, phone on 10%. Will text when it's back",
    "Reminder from {name}: book club at {place} {day}, bring the book!",
    "Well done on the driving test!! Knew u'd pass",
    "Ur prescription is ready, pick it up from the chemist after {clock}",
    "Cat's been sick on the rug again. Not happy",
]

RESERVED_SPAM = [
    "Your {brand} SIM is due for deactivation. Reactivate now at {domain} to keep your number",
    "CONGRATS! Ur number was picked 4 a FREE {prize}. Reply YES to {short} 2 get it delivered "
    "{spam_price}",
    "{bank} ALERT: a payment of {refund} is pending. If this wasn't you, cancel at {domain}",
    "Hi dad, texting from a friend's phone, mine's broken. Can u transfer {fee} urgently? Will "
    "explain later",
    "Earn {refund} a week from your sofa! Simple online tasks. Start today: {domain}",
    "You have an unclaimed {prize} from our summer raffle. Call {premium} quoting {code}. "
    "{spam_price}",
    "Txt JOKE to {short} for a daily laugh sent 2 ur mobile! {spam_price} Txt STOP to end",
    "DVLA: your vehicle tax payment failed. Avoid a fine, update your details at {domain}",
    "Hey it's {name}! We met at the party last wk, remember? Check my pics {domain} ;)",
    "Your {courier} package is waiting at the depot. Rebook delivery for {fee}: {domain}",
    "Last chance 2 WIN {prize}! Answer 1 question. Reply A or B to {short}. {spam_price}",
    "Your mobile contract qualifies for a refund of {refund}. Reply REFUND to claim, STOP to opt "
    "out",
    "Claim your free energy-saving kit worth £200 from the government scheme: {domain}",
    "Psst... {name} here. Got a hot tip on a stock that will 10x this week. Join {domain}",
]

ABBREVIATIONS = [
    (r"\byou\b", "u"),
    (r"\bare\b", "r"),
    (r"\bto\b", "2"),
    (r"\bfor\b", "4"),
    (r"\btonight\b", "2nite"),
    (r"\bplease\b", "pls"),
    (r"\bthanks\b", "thx"),
    (r"\btomorrow\b", "tmrw"),
    (r"\bbecause\b", "cos"),
    (r"\bokay\b", "ok"),
    (r"\byour\b", "ur"),
    (r"\bsee\b", "c"),
    (r"\bbefore\b", "b4"),
    (r"\bgreat\b", "gr8"),
]
EMOTICONS = [":)", ":-)", ";)", ":(", "xx", "x", ":D", "lol", "haha", ":P"]
SHOPS = ["TESCO STORES", "AMAZON UK", "SHELL", "PRET", "ASDA", "TFL TRAVEL", "SPOTIFY", "BOOTS"]
DAYS = ["mon", "Tuesday", "weds", "Thursday", "fri", "Saturday", "Sunday", "tmrw", "next week"]


def _fill(template: str, rng: random.Random) -> str:
    values = {
        "name": rng.choice(NAMES),
        "name2": rng.choice(NAMES),
        "place": rng.choice(PLACES),
        "time": rng.choice(TIMES),
        "food": rng.choice(FOODS),
        "thing": rng.choice(THINGS),
        "activity": rng.choice(ACTIVITIES),
        "feeling": rng.choice(FEELINGS),
        "price": _price(rng, False),
        "spam_price": _price(rng, True),
        "prize": rng.choice(PRIZES),
        "premium": _premium_number(rng),
        "short": _short_code(rng),
        "code": _code(rng),
        "brand": rng.choice(BRANDS),
        "bank": rng.choice(BANKS),
        "courier": rng.choice(COURIERS),
        "domain": rng.choice(DOMAINS),
        "digits": str(rng.randint(1000, 99999)),
        "digits4": str(rng.randint(1000, 9999)),
        "shop": rng.choice(SHOPS),
        "day": rng.choice(DAYS),
        "clock": f"{rng.randint(8, 17)}:{rng.choice(['00', '15', '30', '45'])}",
        "fee": rng.choice(["£1.99", "£2.99", "$1.45", "£0.99", "£3.20", "£150", "£200"]),
        "refund": rng.choice(["£264.80", "£421.50", "£1,245", "£98.20", "£3,100"]),
        "points": str(rng.choice([800, 1500, 2000, 3030])),
        "money_small": rng.choice(["a fiver", "£10", "£20", "£2 lol", "50 quid"]),
    }
    return template.format(**values)


def _typo(text: str, rng: random.Random) -> str:
    words = text.split(" ")
    i = rng.randrange(len(words))
    word = words[i]
    if len(word) > 3 and word.isalpha():
        j = rng.randrange(len(word) - 1)
        word = (
            word[:j] + word[j + 1] + word[j] + word[j + 2 :]
            if rng.random() < 0.5
            else word[:j] + word[j + 1 :]
        )
        words[i] = word
    return " ".join(words)


def _texting_style(text: str, rng: random.Random, is_spam: bool) -> str:
    """Apply the habits people (and spammers) type with; probabilities differ by class."""
    if rng.random() < (0.35 if is_spam else 0.5):
        for pattern, short in ABBREVIATIONS:
            if rng.random() < 0.7:
                text = re.sub(pattern, short, text, flags=re.IGNORECASE)
    if not is_spam and rng.random() < 0.35:
        text = text.lower()
    if is_spam and rng.random() < 0.15:
        text = text.upper()
    if rng.random() < 0.2:
        text = _typo(text, rng)
    if not is_spam and rng.random() < 0.25:
        text = text.rstrip(".!") + " " + rng.choice(EMOTICONS)
    if rng.random() < 0.1:
        text = text.replace(". ", ".. ", 1)
    return text


def generate_sms(
    n_per_class: int | dict[str, int] = 620,
    seed: int = 1234,
    shapes: dict[str, list[tuple[str, str]]] | None = None,
    skip: Callable[[str], bool] | None = None,
) -> list[dict]:
    """Generate ``n_per_class`` unique spam and ham messages as ``{"text", "label", "group"}`` rows.

    ``group`` names the message shape (template); the splitter keeps each shape in one split, so
    test messages are shapes the model never saw in training. ``shapes`` (label -> ``(group,
    template)`` pairs; default: every shipped template) and a count per label make an
    instructor's private held-out file from the reserved shapes; ``skip`` drops texts already
    used elsewhere.
    """
    rng = random.Random(seed)
    shapes = shapes or {
        label: [(f"{label}-{i:02d}", t) for i, t in enumerate(templates)]
        for label, templates in (("ham", HAM_TEMPLATES), ("spam", SPAM_TEMPLATES))
    }
    rows, seen = [], set()
    for label, templates in shapes.items():
        wanted = n_per_class[label] if isinstance(n_per_class, dict) else n_per_class
        count, attempts = 0, 0
        while count < wanted:
            attempts += 1
            if attempts > 200 * wanted:
                raise RuntimeError(f"cannot make {wanted} unique {label} messages")
            group, template = templates[rng.randrange(len(templates))]
            text = _texting_style(_fill(template, rng), rng, label == "spam")
            key = re.sub(r"\W+", " ", text.lower()).strip()
            if key in seen or (skip is not None and skip(text)):
                continue
            seen.add(key)
            rows.append({"text": text, "label": label, "group": group})
            count += 1
    return rows
