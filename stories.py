"""Offline TinyStories-style story generator: no language model, only stdlib `random`.

The TinyStories paper built its data set by asking GPT-3.5/4 for a short story that only
uses words a 3-year-old understands, must contain one given verb, noun and adjective, and
follows a random subset of story features (Dialogue, BadEnding, MoralValue, PlotTwist,
Foreshadowing, Conflict). This module follows the same recipe with hand-written word
lists, plot skeletons and sentence templates, so the rest of the project can be trained
and tested without downloading anything. `python prepare.py --dataset=synthetic` calls it;
from Python:

    import random, stories
    record = stories.make_story(random.Random(0))   # {"story", "words", "features", "summary", ...}
    print(stories.instruct_text(record))            # the TinyStories-Instruct form
    for record in stories.generate_stories(1000, seed=0): ...

Each record also carries "characters" (name, pronoun, role), "plot" (the skeleton used)
and "hint" (the foreshadowed word, or None) so tests can check the stories honestly.
"""

import random
import re
from typing import Iterator

FEATURES = ("Dialogue", "BadEnding", "MoralValue", "PlotTwist", "Foreshadowing", "Conflict")
FEATURE_PROB = 0.4  # each feature is drawn on its own, so about 5% of stories have none

# ---------------------------------------------------------------------------------------
# Word lists. Words are grouped by the kind of slot they can fill, so a story never asks
# a child to "hug the lion" or "eat the kite".
# ---------------------------------------------------------------------------------------

NOUN_GROUPS = {
    # things a child can own, carry, lose and share: they fill the story's main object
    "toy": "ball kite doll teddy drum puzzle block robot balloon marble puppet rocket truck "
           "dinosaur dragon toy flute trumpet whistle car train plane boat firetruck sailboat "
           "crayon yoyo wagon sled",
    "food": "apple banana pear peach plum cherry grape orange lemon berry strawberry melon mango "
            "cake cookie pie cupcake muffin candy lollipop donut pancake waffle sandwich pizza "
            "cracker biscuit pretzel popsicle egg bagel carrot potato tomato pumpkin peanut cucumber",
    "thing": "hat box cup bag key shell rock stick leaf flower feather coin ring book pencil "
             "brush spoon bowl plate basket bucket shovel sock shoe boot coat scarf mitten blanket "
             "pillow jar bottle bell rope ribbon button map letter card picture gift umbrella "
             "necklace crown wand seed acorn pinecone stone pebble bead sticker candle cap glove "
             "bone flag net mirror comb towel toothbrush jacket sweater backpack bracelet medal "
             "ticket camera flashlight broom sponge magnet lunchbox teapot apron",
    # animals, by where they can turn up and whether a child may touch them
    "pet": "dog puppy cat kitten bunny rabbit mouse duck duckling squirrel hedgehog",
    "farm": "pony horse lamb sheep goat pig piglet cow calf chick hen goose donkey rooster",
    "critter": "frog toad turtle snail worm ladybug butterfly bee ant caterpillar beetle spider "
               "owl bird robin fox deer raccoon bat mole swan firefly dragonfly grasshopper lizard crow",
    "wild": "lion tiger bear elephant giraffe monkey zebra hippo kangaroo panda wolf penguin "
            "camel gorilla rhino flamingo",
    "sea": "fish whale dolphin shark octopus crab seal starfish jellyfish",
    # things you see on the way but do not carry
    "sight": "tree bridge fence tower windmill lighthouse waterfall mountain bus tractor ship "
             "house tent nest bush puddle mailbox statue fountain gate snowman scarecrow "
             "sandcastle bench hut seesaw barn shed treehouse",
    "sky": "sun moon star cloud rainbow helicopter jet",
    # people: grown-ups help, children are the hero's friend or family
    "adult": "mom dad grandma grandpa aunt uncle teacher farmer baker doctor nurse",
    "kid": "friend sister brother cousin neighbor",
}
# name:preposition:kind. The kind decides which animals live there and which plots fit.
_PLACE_SPEC = (
    "park:at:out garden:in:out yard:in:out backyard:in:out meadow:in:out field:in:out "
    "hill:on:out playground:at:out woods:in:out forest:in:out orchard:in:out valley:in:out "
    "campsite:at:out market:at:out fair:at:out village:in:out porch:on:out farm:on:farm "
    "ranch:on:farm zoo:at:zoo jungle:in:wild cave:in:wild beach:on:sea island:on:sea "
    "pond:by:fresh lake:by:fresh river:by:fresh creek:by:fresh school:at:in library:at:in "
    "kitchen:in:in bakery:at:in shop:at:in store:at:in museum:at:in classroom:in:in "
    "attic:in:in garage:in:in castle:in:in circus:at:in"
)
PLACES = {name: (prep, kind) for name, prep, kind in (p.split(":") for p in _PLACE_SPEC.split())}
NOUN_GROUPS["place"] = " ".join(PLACES)

# Verb groups: every frame of a group fits every verb in it. {v} is the base form, {vd} the
# past tense, {x} an object that suits the verb ("bake" takes cake or pie, never a sock).
# "when" says where the frame can stand in the outing: before leaving, on the way, or there.
_VERB_GROUPS = {
    "move": ("way", ("{H} {vd} all the way there.",
                     "{H} loved to {v}, so {he} {vd} the whole way."),
             "run:ran skip:skipped hop:hopped jump:jumped dance:danced race:raced march:marched "
             "gallop:galloped stomp:stomped tiptoe:tiptoed zoom:zoomed wander:wandered walk:walked "
             "hurry:hurried dash:dashed sing:sang hum:hummed whistle:whistled giggle:giggled "
             "laugh:laughed cheer:cheered ride:rode skate:skated crawl:crawled leap:leaped "
             "trot:trotted jog:jogged waddle:waddled"),
    "play": ("there", ("When they got there, {H} and {F} {vd} and {vd} until they were tired.",
                       "First, {H} wanted to {v}, so {he} and {F} {vd} for a long time."),
             "play:played spin:spun twirl:twirled wiggle:wiggled clap:clapped climb:climbed "
             "slide:slid swing:swung wave:waved stretch:stretched tumble:tumbled shout:shouted "
             "yell:yelled explore:explored dig:dug sway:swayed"),
    "water": ("there", ("Later, they went down to the {water} to {v}.",
                        "{H} {vd} in the cool water of the {water} until {his} fingers were wrinkly."),
              "swim:swam splash:splashed paddle:paddled float:floated wade:waded dive:dove"),
    "rest": ("there", ("After all that fun, {H} lay down {cozy} to {v} for a while.",
                       "Later, {H} was happy to sit {cozy} and {v} for a bit."),
             "rest:rested nap:napped sleep:slept dream:dreamed read:read listen:listened "
             "think:thought wait:waited relax:relaxed snooze:snoozed"),
    "hold": ("way", ("{H} {vd} {his} {obj} all the way there.",
                     "{H} {vd} {his} {obj} close as they walked."),
             "hold:held carry:carried"),
    "take": ("there", ("When they got there, {H} {vd} {his} {obj} out of {his} bag.",),
             "take:took grab:grabbed pull:pulled get:got"),
    "pack": ("before", ("Before they left, {H} {vd} {his} {obj} into {his} bag.",),
             "pack:packed put:put tuck:tucked stuff:stuffed"),
    "gift": ("before", ("Before they left, {H} {vd} {A} a little flower from the garden.",),
             "give:gave hand:handed bring:brought show:showed offer:offered"),
    "find": ("way", ("On the way, {H} {vd} {a_x} on the ground.",
                     "Along the way, {H} {vd} {a_x} and put it in {his} pocket."),
             "find:found spot:spotted notice:noticed collect:collected"),
    "share": ("there", ("Under a big tree, they {vd} {a_food}.",
                        "At snack time, {H} {vd} {his} {food_np} with {F}."),
              "share:shared split:split"),
    "swap": ("there", ("At snack time, {H} {vd} {his} {food_np} for {F}'s {food2}.",),
             "swap:swapped trade:traded"),
    "eat": ("there", ("At snack time, they {vd} {a_food}.",
                      "{H} was hungry, so {he} {vd} {a_food}."),
            "eat:ate munch:munched nibble:nibbled gobble:gobbled taste:tasted chew:chewed "
            "lick:licked=lollipop,popsicle"),
    "cook": ("before", ("That morning, {H} and {A} {vd} {a_x} together.",
                        "Before they left, {A} helped {H} {v} {a_x} for the trip."),
             "bake:baked=cake,pie,muffin,cupcake,pizza cook:cooked=egg,pancake,potato,pizza "
             "peel:peeled=banana,orange,potato,carrot,egg slice:sliced=apple,pear,melon,cake,tomato"),
    "pick": ("way", ("On the way, {H} stopped to {v} {a_x}.",),
             "pick:picked=flower,apple,berry,cherry,plum,peach smell:smelled=flower,rose "
             "sniff:sniffed=flower,rose touch:touched=flower,leaf,feather"),
    "make": ("before", ("That morning, {H} and {F} {vd} {a_x} for {A}.",
                        "Before they left, {H} {vd} {a_x} to give to {A}."),
             "make:made=card,hat,crown,necklace,kite,picture write:wrote=letter,card,note "
             "draw:drew=picture,flower,house,rainbow paint:painted=picture,rock,card,flower "
             "build:built=tower,house,castle fold:folded=paper boat,paper hat,paper plane "
             "color:colored=picture,card,star sew:sewed=doll,hat,pillow knit:knitted=scarf,hat,mitten "
             "glue:glued=picture,card,crown cut:cut=paper star,paper heart,paper flower"),
    "pass": ("there", ("{H} and {F} {vd} {ball} back and forth.",
                       "Then {H} {vd} {ball} to {F}, and {F} laughed."),
             "throw:threw toss:tossed roll:rolled pass:passed kick:kicked bounce:bounced"),
    "catch": ("there", ("{H} tried to {v} {a_x}, but it was too quick.",
                        "{H} ran after {a_x} and tried to {v} it."),
              "catch:caught=butterfly,frog,bubble,ladybug"),
    # the animal here is the story's animal when a child may touch it, otherwise a pet
    "touch": ("there", ("There they met {a_x}, and {H} {vd} it gently.",
                        "{H} wanted to {v} {a_x}, so {he} did it very gently."),
              "feed:fed pet:petted hug:hugged tickle:tickled brush:brushed wash:washed "
              "cuddle:cuddled pat:patted stroke:stroked kiss:kissed"),
    "see": ("there", ("{H} and {F} {vd} {a_x} for a little while.",),
            "watch:watched follow:followed chase:chased"),
    "hide": ("there", ("They played hide and seek, and {H} {vd} {hidespot}.",),
             "hide:hid peek:peeked squeeze:squeezed sneak:sneaked"),
    "feel": ("before", ("{H} {vd} {his} {obj} more than anything.",
                        "{H} {vd} {his} {obj} very much."),
             "love:loved like:liked"),
    "tell": ("there", ("{H} {vd} a little secret to {F}, and they both giggled.",),
             "tell:told whisper:whispered"),
    "call": ("there", ("{H} {vd} {A} to come and look.",),
             "call:called ask:asked"),
    "oops": ("before", ("At breakfast, {H} {vd} {his} {x}, but {A} just smiled and helped {him}.",
                        "That morning, {H} {vd} {his} {x}, but {A} said it was all right."),
             "drop:dropped=spoon,cup,crayon spill:spilled=juice,milk break:broke=cup,crayon,plate "
             "forget:forgot=hat,coat,lunch lose:lost=mitten,sock,button tear:tore=paper,drawing"),
    # small acts that each bring their own object along
    "misc": ("before", ("That morning, {H} {vd} {x}.", "Before they left, {H} {vd} {x}."),
             "look:looked=up at the clouds hear:heard=the birds singing see:saw=a bird building a nest "
             "count:counted=the birds on the fence blow:blew=big bubbles water:watered=the flowers "
             "plant:planted=little seeds in the garden sweep:swept=the porch tie:tied={his} shoes "
             "button:buttoned=up {his} coat open:opened=the window to let the sun in "
             "fill:filled=a bucket with water pour:poured=water on the plants "
             "knock:knocked=on the old tree to hear the sound fly:flew=a paper plane feel:felt=the warm sun on {his} face "
             "smile:smiled=at everyone {he} met ring:rang=the little bell on the gate "
             "buy:bought=a treat at the shop visit:visited=the ducks at the pond "
             "wish:wished=for a sunny day rake:raked=the leaves into a big pile hang:hung=up {his} coat "
             "help:helped={A} in the garden thank:thanked={A} for breakfast clean:cleaned=up {his} room "
             "fix:fixed=a squeaky door with {A} dry:dried=the dishes set:set=the table for lunch "
             "wipe:wiped=the table sit:sat=on the steps to watch the clouds try:tried=a new game "
             "teach:taught=the dog next door a new trick win:won=a little prize"),
}


_YARD_FRAMES = {
    "play": ("That morning, {H} and {F} {vd} and {vd} in the yard until they were tired.",),
    "pass": ("That morning, {H} and {F} {vd} {ball} back and forth in the yard.",),
    "catch": ("That morning, in the yard, {H} tried to {v} {a_x}, but it was too quick.",),
}


def _parse_verbs():
    verbs, group_of, objects = {}, {}, {}
    for group, (_, _, spec) in _VERB_GROUPS.items():
        # "look:looked=up at the clouds" keeps its spaces, so split on the verb pattern
        for m in re.finditer(r"([a-z]+):([a-z]+)(?:=([^:]*?))?(?=\s+[a-z]+:[a-z]+|$)", spec):
            base, past, obj = m.groups()
            assert base not in verbs, base
            verbs[base], group_of[base] = past, group
            if obj:
                objects[base] = obj.split(",") if group != "misc" else [obj]
    return verbs, group_of, objects


VERBS, _VERB_GROUP, _VERB_OBJECTS = _parse_verbs()  # VERBS: base form -> past tense

ADJECTIVE_GROUPS = {
    # describe the hero in the opening line
    "trait": "kind brave shy curious clever silly polite gentle friendly helpful bossy lazy "
             "naughty playful careful smart honest cheerful jolly funny quiet busy wild "
             "noisy messy lucky good fast slow strong loud sneaky greedy tidy loving caring chatty",
    # how the story's animal feels when we first meet it
    "feeling": "happy sad lonely grumpy sleepy hungry scared tired worried excited calm angry "
               "upset bored thirsty nervous proud glad cold hurt lost surprised frightened "
               "shivering sick wobbly",
    # fits any object the hero owns
    "look": "big little small tiny huge red blue green yellow pink purple orange brown black "
            "white gray golden silver shiny pretty beautiful lovely special new old strange fancy "
            "bright sparkly dirty clean wet heavy plain perfect cute magic spotted striped "
            "colorful wonderful nice glittery glowing giant gold sticky dark wooden",
    "cozy": "soft fluffy fuzzy furry silky woolly cuddly snuggly squishy",  # blankets, teddies, kittens
    "stony": "smooth bumpy rough hard flat round",                          # stones and shells
    "taste": "yummy tasty sweet fresh juicy crunchy sour ripe salty delicious chewy gooey crispy",
    "weather": "sunny windy cloudy warm hot chilly cool breezy rainy foggy",
    "place": "peaceful crowded empty muddy still spooky dusty shady",  # the place on the day of the story
}

def _group_map(groups):
    out = {}
    for g, words in groups.items():
        for w in words.split():
            assert w not in out, w
            out[w] = g
    return out


# word -> group. Nouns and adjectives get separate maps: "orange" is a fruit and a colour.
_NOUN_GROUP = _group_map(NOUN_GROUPS)
_ADJ_GROUP = _group_map(ADJECTIVE_GROUPS)
NOUNS = [w for g in NOUN_GROUPS.values() for w in g.split()]
ADJECTIVES = [w for g in ADJECTIVE_GROUPS.values() for w in g.split()]
VERB_LIST = list(VERBS)

_W = {g: tuple(words.split()) for g, words in {**NOUN_GROUPS, **ADJECTIVE_GROUPS}.items()}
_OWNABLE = _W["toy"] + _W["food"] + _W["thing"]
_TOUCHABLE = set(_W["pet"] + _W["farm"])
_ANIMALS_AT = {  # which animals can plausibly be met at each kind of place
    "out": _W["pet"] + _W["critter"],
    "farm": _W["farm"] + _W["pet"] + _W["critter"],
    "zoo": _W["wild"] + _W["farm"],
    "wild": _W["wild"] + _W["critter"],
    "sea": _W["sea"] + _W["pet"],
    "fresh": _W["pet"] + _W["critter"] + ("fish",),
    "in": _W["pet"],
}
_FRUIT = set("apple banana pear peach plum cherry grape orange lemon berry strawberry melon mango".split())
_COZY = set("teddy blanket pillow scarf mitten sweater hat sock doll puppet coat jacket".split())
_STONY = set("rock stone pebble shell".split())
_ADJ_FITS = {  # what a texture or taste adjective can describe (other tastes fit any food)
    **dict.fromkeys(_W["cozy"], _COZY), **dict.fromkeys(_W["stony"], _STONY),
    "juicy": _FRUIT, "ripe": _FRUIT, "sour": set("lemon cherry plum grape berry orange strawberry apple".split()),
    "crunchy": set("apple carrot cookie cracker pretzel peanut cucumber biscuit".split()),
    "salty": set("cracker pretzel peanut".split()),
    **dict.fromkeys(("chewy", "gooey"), set("cake cookie pie cupcake muffin donut pancake waffle pizza candy".split())),
    "crispy": set("cracker pretzel cookie waffle biscuit pizza".split()),
}

# A small pool, as in TinyStories, where a few dozen names cover most stories. It is what lets the 1-layer
# quick-start model learn to reuse a story's names: 256 wide and 1,500 steps on ~100 names, its loss on a
# name the story had already used was 1.7 nats (mostly guessing among the pool); on these 24, 0.8.
_GIRLS = "Lily Mia Emma Sue Anna Lucy Sara Amy Zoe Maya Priya Yuki".split()
_BOYS = "Tom Ben Max Sam Leo Jack Tim Bob Finn Omar Ravi Kofi".split()
_ADULTS = {  # noun -> (how the story names them, pronoun or None for either)
    "mom": ("Mom", "she"), "dad": ("Dad", "he"), "grandma": ("Grandma", "she"),
    "grandpa": ("Grandpa", "he"), "aunt": ("{his} aunt", "she"), "uncle": ("{his} uncle", "he"),
    "teacher": ("the teacher", None), "farmer": ("the farmer", None), "baker": ("the baker", None),
    "doctor": ("the doctor", None), "nurse": ("the nurse", None),
}
_NOT_FOR_FOOD = set("silver gray black white old new clean heavy plain dirty wet strange pretty dark wooden gold".split())
_FLIERS = set("duck duckling goose chick hen owl bird robin swan bat bee butterfly ladybug firefly dragonfly crow".split())
_BIG_FOOD = set("cake pie pizza melon pumpkin sandwich pancake waffle mango".split())  # too big for a pocket
_SNACKS = [f for f in _W["food"] if f not in ("potato", "pumpkin", "tomato", "egg", "lemon")]
_TREATS = set("cake cookie pie cupcake muffin candy lollipop donut pancake waffle pizza popsicle".split())
_HOME = {"kitchen", "attic", "garage", "porch"}
_PRONOUNS = {"she": ("she", "her", "her", "herself"), "he": ("he", "him", "his", "himself")}


def _a(phrase):
    return ("an " if phrase[0] in "aeiou" or phrase.startswith("honest") else "a ") + phrase


class _Vars(dict):
    """Template variables. The animal and the snack are introduced with an article and
    adjective the first time a sentence names them ("a sleepy frog") and as "the frog" after."""

    def __missing__(self, key):
        if key == "a_food":
            if self["_food_seen"]:
                return "the " + self["food"]
            self["_food_seen"] = True
            return self["_a_food"]
        if key in ("an_animal", "An_animal"):
            if self["_animal_seen"]:
                phrase = "the " + self["animal"]
            else:
                self["_animal_seen"] = True
                phrase = self["_animal_first"]
            return phrase[0].upper() + phrase[1:] if key[0] == "A" else phrase
        raise KeyError(key)


# ---------------------------------------------------------------------------------------
# The teller: one story's cast, words and features, plus the helpers every plot shares.
# ---------------------------------------------------------------------------------------

class _Teller:
    def __init__(self, rng, verb, noun, adj, features, plot):
        self.rng, self.verb, self.noun, self.adj = rng, verb, noun, adj
        self.features = features
        self.dialogue = "Dialogue" in features
        self.bad = "BadEnding" in features
        self.moral = "MoralValue" in features
        self.twist = "PlotTwist" in features
        self.fore = "Foreshadowing" in features
        self.conflict = "Conflict" in features
        self.hint = None
        self.friend_known = plot.name != "newfriend"
        self.animal_central = plot.name == "help"
        self.extra = []  # sentences that bring in a drawn word no plot slot could take
        self.noun_group = _NOUN_GROUP[noun]
        self.adj_group = _ADJ_GROUP[adj]
        self.verb_group = _VERB_GROUP[verb]
        self._cast(plot)

    # -- choosing the cast and the props --------------------------------------------------
    def _cast(self, plot):
        rng, noun, g = self.rng, self.noun, self.noun_group
        v = self.v = _Vars(_animal_seen=False, _food_seen=False)

        place = noun if g == "place" else None
        animal = noun if g in ("pet", "farm", "critter", "wild", "sea") else None
        if place is None:
            kinds = plot.kinds
            if animal:  # meet the drawn animal where it lives, if this plot goes there
                fitting = [k for k in kinds if animal in _ANIMALS_AT[k]]
                kinds = fitting or kinds
            place = rng.choice([p for p, (_, k) in PLACES.items() if k in kinds and plot.allows(p)])
        prep, kind = PLACES[place]
        self.kind = kind
        at_home = _ANIMALS_AT[kind]

        # The hero is sometimes a little animal, as in many TinyStories.
        hero_species = None
        if animal and g in ("pet", "farm", "critter") and rng.random() < 0.35:
            hero_species, animal = animal, None
        elif rng.random() < 0.12:
            hero_species = rng.choice(_W["pet"] + _W["farm"])
        if animal and animal not in at_home:
            self.extra.append("{H}'s favorite book was about " + _a(animal) + ".")
            animal = None
        if animal is None:
            animal = rng.choice([x for x in at_home if x != hero_species])

        hero_pr = rng.choice(("she", "he"))
        hero = rng.choice(_GIRLS if hero_pr == "she" else _BOYS)
        self.hero_kid = hero_species or ("girl" if hero_pr == "she" else "boy")

        rel = None
        if g == "kid":
            rel = noun
        elif plot.name != "newfriend":
            rel = rng.choice(("friend", "friend", "friend", "sister", "brother", "cousin", "neighbor"))
        if plot.name == "newfriend":
            rel = "friend"
        friend_pr = {"sister": "she", "brother": "he"}.get(rel) or rng.choice(("she", "he"))
        friend = rng.choice([n for n in (_GIRLS if friend_pr == "she" else _BOYS) if n != hero])
        if rel in ("sister", "brother", "cousin"):
            rel = rel if rel == "cousin" else rng.choice(("little ", "big ")) + rel
            friend_kid = hero_species or ("girl" if friend_pr == "she" else "boy")
        elif hero_species:
            friend_kid = rng.choice([x for x in _W["pet"] + _W["critter"] if x not in (hero_species, animal)])
        else:
            friend_kid = "girl" if friend_pr == "she" else "boy"
        self.rel, self.friend_kid = rel, friend_kid

        adult_key = noun if g == "adult" else rng.choice(("mom", "mom", "dad", "dad", "grandma", "grandpa"))
        adult_name, adult_pr = _ADULTS[adult_key]
        adult_pr = adult_pr or rng.choice(("she", "he"))
        self.adult_key = adult_key

        obj = noun if g in ("toy", "food", "thing") else rng.choice(_OWNABLE)
        self.is_food = obj in _W["food"]
        food = noun if g == "food" and obj != noun else None
        sight = noun if g in ("sight", "sky") else None

        he, him, his, self_ = _PRONOUNS[hero_pr]
        fhe, fhim, fhis, _ = _PRONOUNS[friend_pr]
        ahe, ahim, ahis, _ = _PRONOUNS[adult_pr]
        adult_name = adult_name.format(his=his)
        v.update(H=hero, he=he, him=him, his=his, He=he.capitalize(), His=his.capitalize(),
                 self=self_, kid=self.hero_kid,
                 F=friend, fhe=fhe, fhim=fhim, fhis=fhis, Fhe=fhe.capitalize(), Fhis=fhis.capitalize(),
                 fkid=friend_kid, rel=rel or "friend",
                 A=adult_name, Acap=adult_name[0].upper() + adult_name[1:],
                 ahe=ahe, ahim=ahim, ahis=ahis, Ahe=ahe.capitalize(), Ahis=ahis.capitalize(),
                 obj=obj, place=place, animal=animal, an_animal_word=_a(animal))
        # Rooms of a home are someone's ("Grandma's kitchen"), so a trip there makes sense.
        v["the_place"] = (adult_name + "'s " + place) if place in _HOME else "the " + place
        v["at_place"] = prep + " " + v["the_place"]
        self.characters = [
            {"name": hero, "pronoun": hero_pr, "role": "hero", "kind": self.hero_kid},
            {"name": friend, "pronoun": friend_pr, "role": rel or "friend", "kind": friend_kid},
            {"name": adult_name, "pronoun": adult_pr, "role": adult_key, "kind": "grown-up"},
        ]

        # Where the drawn adjective goes depends on what it can describe.
        a, ag = self.adj, self.adj_group
        look = a if ag == "look" else (rng.choice(_W["look"]) if rng.random() < 0.4 else "")
        trait = a if ag == "trait" else (rng.choice(_W["trait"]) if rng.random() < 0.3 else "")
        feel = a if ag == "feeling" else (rng.choice(("little", "small", "friendly", "")) if rng.random() < 0.5 else "")
        if ag in ("cozy", "stony", "taste"):
            if obj in _ADJ_FITS.get(a, _W["food"] if ag == "taste" else ()):
                look = a
            elif ag == "cozy" and animal in _TOUCHABLE:
                feel = a
            elif ag == "cozy":
                self.extra.append("Every night, {H} slept with " + _a(a) + " blanket on {his} bed.")
            elif ag == "stony":
                self.extra.append("{H} kept " + _a(a) + " stone in {his} pocket for luck.")
            else:
                fits = [f for f in sorted(_ADJ_FITS.get(a, _SNACKS)) if f != obj]
                food = food if food in fits else rng.choice(fits)
        v["trait"] = trait
        v["a_kid"] = _a((trait + " " if trait else "") + "little " + self.hero_kid)
        v["adj_obj"] = (look + " " + obj) if look else obj
        v["a_obj"] = _a(v["adj_obj"])
        if self.is_food and look in _NOT_FOR_FOOD:  # "a pie in a silver box", not "a silver pie"
            v["adj_obj"] = obj
            v["a_obj"] = _a(obj) + " in " + _a(look) + " box"
        v["_animal_first"] = _a((feel + " " if feel else "") + animal)
        if food is None:
            food = rng.choice([f for f in _SNACKS if f != obj])
        tasty = a if ag == "taste" and look != a else ""
        self.tasty = bool(tasty)
        v["food"], v["food_np"] = food, (tasty + " " + food if tasty else food)
        v["_a_food"] = _a(v["food_np"])
        v["pocket"] = "bag" if food in _BIG_FOOD else "pocket"
        v["food2"] = rng.choice([f for f in _SNACKS if f not in (food, obj)])
        self.weather = a if ag == "weather" else None
        self.place_adj = a if ag == "place" else None
        self.sight = sight
        v["water"] = place if kind in ("fresh",) else ("sea" if kind == "sea" else "little pond nearby")
        v["cozy"] = {"in": "in a cozy corner", "sea": "on the warm sand"}.get(kind, "under a shady tree")
        v["hidespot"] = {"in": "behind a big door", "sea": "behind a big rock"}.get(kind, "behind a big tree")
        v["ball"] = f"{his} {obj}" if obj in ("ball", "balloon") else "a ball"
        # how the animal gets away, and where it hides what it takes
        if animal in _W["sea"]:
            v.update(ran="swam", runs="swims", running="swimming", hideout="deep down under the water")
        elif animal in _FLIERS:
            v.update(ran="flew", runs="flies", running="flying", hideout="high up into its nest")
        else:
            v.update(ran="ran", runs="runs", running="running", hideout="deep into a little hole")
        if obj in ("ball", "balloon"):
            v["snap"] = "Pop! The {obj} burst with a loud bang.".format(obj=obj)
        elif obj in _COZY:
            v["snap"] = "With a loud rip, the {obj} tore in two.".format(obj=obj)
        else:
            v["snap"] = "With a loud snap, the {obj} broke in two.".format(obj=obj)
        v["x"] = v["a_x"] = ""
        self._verb_object()

    def _verb_object(self):
        """Pick what the drawn verb acts on, so that the verb's sentence makes sense."""
        v, verb, rng = self.v, self.verb, self.rng
        v["v"], v["vd"] = verb, VERBS[verb]
        g = self.verb_group
        if g in ("touch", "see"):
            ok = _TOUCHABLE if g == "touch" else set(_W["pet"] + _W["farm"] + _W["critter"])
            if v["animal"] in ok and not self.animal_central:
                v["a_x"] = "{an_animal}"  # filled in later, so the first mention gets the adjective
            else:
                v["a_x"] = _a(rng.choice(sorted(ok & set(_ANIMALS_AT[self.kind]) - {v["animal"]}) or ["puppy"]))
        elif g == "find":
            v["a_x"] = _a(rng.choice(("shiny coin", "pretty shell", "blue feather", "round pebble",
                                      "red button", "little acorn", "tiny pinecone")))
        elif verb in _VERB_OBJECTS:
            x = rng.choice([o for o in _VERB_OBJECTS[verb] if o != v["obj"]] or _VERB_OBJECTS[verb])
            v["x"] = x.format_map(v)
            v["a_x"] = _a(v["x"])

    # -- small helpers -----------------------------------------------------------------
    def S(self, *options):
        """One of the given templates, filled in."""
        s = options[0] if len(options) == 1 else self.rng.choice(options)
        s = s.format_map(self.v)
        return s[0].upper() + s[1:]

    def say(self, who, line, indirect):
        """Quoted speech for Dialogue stories, reported speech otherwise."""
        if not self.dialogue:
            return self.S(indirect)
        v = self.v
        line = self.S(line)
        name = {"H": v["H"], "F": v["F"], "A": v["A"]}[who]
        tag = "asked" if line[-1] == "?" else ("said", "called", "shouted")[self.rng.randrange(3)] if line[-1] == "!" else "said"
        r = self.rng.random()
        body = line[:-1] + "," if line[-1] == "." else line
        if r < 0.4:
            return f'"{body}" {tag} {name}.'
        if r < 0.75:
            return f'{name[0].upper() + name[1:]} {tag}, "{line}"'
        return f'"{body}" {name} {tag}.'

    def set_hint(self, key, sentence):
        self.hint = key
        return self.S(sentence)

    def spot(self, k=1):
        """k different places to look, fitting the kind of place."""
        spots = self.rng.sample({
            "in": ("under the tables", "behind the door", "in every corner", "under a chair", "behind the big shelf"),
            "sea": ("behind the big rocks", "along the shore", "under an old log", "in the sand by the water"),
            "fresh": ("behind the big rocks", "along the water", "under an old log", "in the reeds by the water"),
            "zoo": ("by the gate", "under a bench", "behind a big sign", "near the fence"),
        }.get(self.kind, ("under a bush", "behind a big tree", "in the tall grass", "by the fence", "under a pile of leaves")), k)
        return spots[0] if k == 1 else spots

    # -- shared story parts --------------------------------------------------------------
    def opening(self):
        """The first lines: who the hero is. Many shapes, so no opening phrase dominates."""
        v, rng = self.v, self.rng
        animal_hero = self.hero_kid not in ("girl", "boy")
        homes = ("in a small house near the woods", "in a yellow house on a quiet street",
                 "in a busy little town", "next to a big green hill", "in a little house with a red door",
                 "near the sea", "at the end of a long, winding lane")
        if animal_hero:
            homes = ("in a cozy home under an old tree", "at the edge of the woods",
                     "near a sunny meadow", "in a snug little burrow", "by a quiet stream")
        home = rng.choice(homes)
        towns = ("small town by the sea", "little village near the woods", "busy town",
                 "quiet town full of trees", "sleepy village", "faraway land")
        options = [
            "Once upon a time, there was {a_kid} named {H}.",
            "{H} was {a_kid} who lived " + home + ".",
            "There was once {a_kid} called {H}.",
            "In a " + rng.choice(towns) + ", there lived {a_kid} named {H}.",
            "Long ago, " + home + ", lived {a_kid} named {H}.",
            "There once lived {a_kid} named {H}.",
            "Today was a special day for {H}, {a_kid}.",
            "{A_kid_cap} named {H} lived " + home + ".",
            "High on a hill, in a house with a blue door, lived {a_kid} named {H}.",
            "Far away, " + home + ", there lived {a_kid} named {H}.",
        ]
        v["A_kid_cap"] = v["a_kid"][0].upper() + v["a_kid"][1:]
        if not v["trait"] or rng.random() < 0.5:
            options += [
                "One bright morning, {H} woke up with a big smile.",
                "Every morning, {H} looked out of the window and waved at the birds.",
                "This is a story about {H}.",
                "It was a lovely day, and {H} was ready to play.",
                "The sun was just coming up when {H} opened {his} eyes.",
            ]
            if not animal_hero:
                options.append("{H} was " + str(rng.randint(3, 6)) + " years old.")
        first = rng.choice(options)
        second = ""
        if "{a_kid}" not in first and "{A_kid_cap}" not in first:
            second = "{He} was {a_kid} who lived " + home + "." if first.startswith("This") else "{He} was {a_kid}."
        return [self.S(first)] + ([self.S(second)] if second else [])

    def own_obj(self):
        if self.is_food:
            treat = "as a special treat" if self.v["obj"] in _TREATS else "from the garden"
            return self.S("{Acap} had packed {a_obj} just for {him}.",
                          "{H} had {a_obj}, and {he} was saving it for later.",
                          "That morning, {A} gave {H} {a_obj} " + treat + ".")
        return self.S("{H} had {a_obj} that {he} loved very much.",
                      "{His} favorite thing in the whole world was {his} {adj_obj}.",
                      "{Acap} had given {him} {a_obj} for {his} birthday, and {he} took it everywhere.",
                      "{H} had {a_obj}, and {he} played with it every day.")

    def friend_intro(self):
        r = self.rel
        if self.friend_kid not in ("girl", "boy"):
            return self.S("{His} " + ("best friend" if r == "friend" else r) + " was " + _a(self.friend_kid) + " named {F}.")
        if r == "friend":
            return self.S("{His} best friend, {F}, lived next door.", "{H} had a best friend named {F}.",
                          "{H} and {his} friend {F} did everything together.")
        if r == "neighbor":
            return self.S("{His} neighbor, {F}, lived in the blue house next door.",
                          "{F}, {his} neighbor, came over to play almost every day.")
        if r == "cousin":
            return self.S("{His} cousin {F} had come to stay for the week.",
                          "{H} had a cousin named {F}, who lived just down the road.")
        return self.S("{H} had {a_rel} named {F}.".replace("{a_rel}", _a(r)),
                      "{His} " + r + ", {F}, always wanted to play with {him}.")

    def adult_intro(self):
        k = self.adult_key
        if k in ("aunt", "uncle"):
            return self.S("{H} was staying with {A} for a few days.")
        if k in ("teacher", "farmer", "baker", "doctor", "nurse"):
            return self.S("{H} lived next door to a kind " + k + ".",
                          "{H} liked the " + k + " who lived down the street very much.")
        return ""

    def day(self):
        if self.weather:
            return self.S("It was a " + self.weather + " day.", "The morning was " + self.weather + ".")
        return ""

    def intro(self, obj=True, friend=True):
        p = self.opening()
        p += [self.day(), self.own_obj() if obj else "", self.friend_intro() if friend else "",
              self.adult_intro()]
        p += [self.S(e) for e in self.extra]
        return p

    def activity(self, when):
        """The sentence that uses the drawn verb, if it belongs at this point of the outing."""
        w, frames, _ = _VERB_GROUPS[self.verb_group]
        if self.kind == "in" and self.verb_group in _YARD_FRAMES:  # nobody digs in a library
            w, frames = "before", _YARD_FRAMES[self.verb_group]
        if w != when:
            return ""
        if not self.friend_known:  # before the new friend is met, leave them out
            frames = [f for f in frames if "{F}" not in f] or [f.replace("{F}", "{A}") for f in frames]
        if self.v["a_x"] == "{an_animal}":  # the story's own animal, met here for the first time
            frames = [f.replace("{a_x}", "{an_animal}") for f in frames]
        return self.S(*frames)

    def go(self):
        return self.S("One day, {H} and {F} went to {the_place}.",
                      "That afternoon, {A} took {H} and {F} to {the_place}.",
                      "On Saturday, {H} and {F} went to play {at_place}.",
                      "After breakfast, {H} asked if they could go to {the_place}, and {A} said yes.",
                      "Later that day, {H} and {F} set off for {the_place}.")

    def outing(self, go=None, meet=(), animal=True):
        """Going to the place: the verb, the sights, the animal and any extra words."""
        if go is None and self.noun_group == "adult":
            go = self.S("That afternoon, {A} took {H} and {F} to {the_place}.",
                        "After lunch, {A} walked with {H} and {F} to {the_place}.")
        p = [self.activity("before"), go or self.go(), self.activity("way")]
        if self.place_adj:
            p.append(self.S("The {place} was " + self.place_adj + " that day."))
        if self.sight or self.rng.random() < 0.3:
            s = self.sight or self.rng.choice(_W["sight"] + _W["sky"])
            if s in _W["sky"]:
                thing = "the " + s if s in ("sun", "moon") else _a(s)
                p.append(self.S("They looked up and saw " + thing + " high in the sky."))
            else:
                p.append(self.S("On the way, they passed " + _a(s) + "."))
        p += meet
        self.friend_known = True
        p.append(self.activity("there"))
        if self.tasty and not self.v["_food_seen"] and self.verb_group not in ("eat", "share", "swap"):
            p.append(self.S("For a snack, they shared {a_food}."))
        if animal:
            p.append(self.animal_scene())
        return p

    def animal_scene(self):
        if self.v["_animal_seen"]:
            return ""
        a = self.v["animal"]
        if a in _W["sea"]:
            return self.S("In the water, {an_animal} was swimming by.")
        if a in _W["wild"]:
            return self.S("Nearby, {an_animal} was watching them with big, round eyes.")
        if self.kind == "in":
            return self.S("Nearby, {an_animal} was watching them.", "{An_animal} was curled up in a corner, fast asleep.")
        return self.S("Nearby, {an_animal} was watching them.", "Not far away, {an_animal} was sitting in the sun.",
                      "{An_animal} peeked out at them from behind a bush.")


# ---------------------------------------------------------------------------------------
# Plot skeletons. Each takes a teller and returns paragraphs (lists of sentences) and a
# summary. Every feature changes what happens, not only a word or two.
# ---------------------------------------------------------------------------------------

class _Plot:
    def __init__(self, name, kinds, fn):
        self.name, self.kinds, self.fn = name, kinds, fn  # kinds: the kinds of place it can happen at

    def allows(self, place):
        # a stranger waiting in Grandma's kitchen is no way to meet a new friend
        return PLACES[place][1] in self.kinds and not (place in _HOME and self.name == "newfriend")


def _lost(t):
    hints = [h for h in ("bell", "ribbon", "hole", "name") if h != t.v["obj"]]
    if t.twist:
        hints.remove("name")  # a stranger bringing it back leaves no room for a twist
    if t.verb_group in ("take", "pack", "hold"):
        hints = [h for h in hints if h != "hole"]
    hint = t.rng.choice(hints) if t.fore else None
    p1 = t.intro()
    if hint == "bell":
        p1.append(t.set_hint("bell", "That morning, {H} tied a little bell to {his} {obj} so it would jingle."))
    elif hint == "ribbon":
        p1.append(t.set_hint("ribbon", "{H} tied a bright red ribbon to {his} {obj}, so it would be easy to spot."))
    elif hint == "name":
        p1.append(t.set_hint("name", "{Acap} wrote {H}'s name on the {obj}, just in case."))
    elif hint == "hole":
        p1.append(t.set_hint("hole", "{H} kept {his} {obj} in {his} bag. There was a tiny hole in the bag, but nobody noticed it."))

    twist = None
    if t.twist:
        twist = "animal" if t.bad or hint else t.rng.choice(("animal", "pocket", "adult"))
    p2 = t.outing()
    if hint == "hole":
        p2.append(t.S("After a while, {H} opened {his} bag. The {obj} was gone!"))
    elif twist == "pocket":
        p2.append(t.S("When it was time to go home, {H} could not find {his} {obj} anywhere."))
    else:
        p2.append(t.S("{H} put {his} {obj} down for just a minute. When {he} turned around, it was gone!",
                      "After a while, {H} looked around. {His} {obj} was gone!"))
    p2.append(t.say("H", "Oh no! Where is my {obj}?", "{H} looked everywhere, but {his} {obj} was nowhere to be seen."))

    s1, s2, s3 = t.spot(3)
    p3 = [t.S("{H} and {F} looked " + s1 + ". They looked " + s2 + ".")]
    if t.conflict:
        p3 += [t.S("{F} wanted to look " + s3 + ", but {H} wanted to go home and tell {A}. They began to argue."),
               t.say("F", "You should have been more careful!", "{F} said it was {H}'s fault for not being careful."),
               t.S("Then {H} took a deep breath and said sorry for shouting. {F} said sorry too, and they agreed to keep looking together.")]
    else:
        p3.append(t.say("F", "Don't worry, we will find it!", "{F} told {H} not to worry, because they would find it."))
    p3.append(t.S("They even asked {an_animal}, but it just looked at them.",
                  "{An_animal} watched them as they searched."))

    found = not t.bad
    if hint == "bell":
        p3.append(t.S("Then they heard a tiny jingle. {H} remembered the little bell {he} had tied on that morning!"))
        if twist:
            p3.append(t.S("They followed the sound, and it turned out the {animal} had the {obj} all along! It had been playing with it " + s3 + "."))
        elif found:
            p3.append(t.S("They followed the sound and found the {obj} " + s3 + "."))
        else:
            p3.append(t.S("They ran toward the sound, but it grew fainter and fainter, and then it was gone."))
    elif hint == "ribbon":
        p3.append(t.S("Then {H} remembered the red ribbon. {He} looked for a little flash of red."))
        if twist:
            p3.append(t.S("There it was, " + s3 + ", and it turned out the {animal} had the {obj} all along! It was sitting right on top of it."))
        elif found:
            p3.append(t.S("There it was, " + s3 + "! The ribbon had made it easy to spot."))
        else:
            p3.append(t.S("But there was no red anywhere, not " + s3 + " and not anywhere else."))
    elif hint == "hole":
        p3.append(t.S("Then {H} remembered the tiny hole in {his} bag. The {obj} must have slipped out on the way!"))
        if twist:
            p3.append(t.S("They walked back along the path, and it turned out the {animal} had found the {obj} first. It was sitting right next to it, as if it was keeping it safe!"))
        elif found:
            p3.append(t.S("They walked back slowly, and there it was, lying in the grass by the path."))
        else:
            p3.append(t.S("They walked back along the path, but the {obj} was nowhere to be found."))
    elif hint == "name":
        if found:
            p3.append(t.S("At last they went home. And there, on the front step, was the {obj}! {H} remembered how {A} had written {his} name on it. A neighbor had read the name and brought it back."))
        else:
            p3.append(t.S("{H} remembered the name {A} had written on it and hoped someone would bring it back. But nobody ever did."))
    elif twist == "animal":
        if found:
            p3.append(t.S("Then {H} saw something " + s3 + ". It turned out the {animal} had the {obj} all along! It had carried it off to play."))
        else:
            p3.append(t.S("Then {H} saw it: the {animal} had the {obj}! It turned out it had taken it all along. Before they could reach it, it {ran} off into the distance."))
    elif twist == "pocket":
        p3.append(t.S("At last {H} sat down, tired, and put {his} hands in {his} pockets. To {his} surprise, there was the {obj}! It had been in {his} pocket all along."))
    elif twist == "adult":
        p3.append(t.S("They went home slowly. But it turned out {A} had found the {obj} when {ahe} came to call them, and {ahe} had kept it safe all along!"))
    elif found:
        p3.append(t.S("At last, {H} spotted something " + s3 + ". It was {his} {obj}!",
                      "Then {F} shouted and pointed. The {obj} was " + s3 + "!"))
    else:
        p3.append(t.S("They looked until the sun went down, but the {obj} was gone."))

    if found:
        p4 = [t.S("{H} hugged {his} {obj} and smiled from ear to ear.", "{H} was so happy to have {his} {obj} back."),
              t.say("H", "Thank you for helping me, {F}!", "{He} thanked {F} for helping {him} look."),
              t.S("{H} held it tight all the way home.", "It was the best day ever.")]
    else:
        p4 = [t.S("{H} walked home without {his} {obj}, feeling very sad.", "{H} went home with empty hands and a sad face."),
              t.S("That night, {he} cried a little, because {he} knew {he} would never see {his} {obj} again.",
                  "{F} held {his} hand, but {H} was still sad. {His} {obj} was gone.")]
    if t.moral:
        p4.append(t.S("{H} learned that good friends help each other, and that you should never give up.",
                      "That day, {H} learned an important lesson: take good care of the things you love.")
                  if found else t.S("{H} learned a hard lesson: always keep an eye on the things you love."))
    summary = {
        "pocket": "{H} thinks {he} has lost {his} {obj} {at_place}, but after a long search with {F} it turns out to be in {his} pocket.",
        "adult": "{H} loses {his} {obj} {at_place} and searches with {F}, but {A} had found it and kept it safe all along.",
        "animal": "{H} loses {his} {obj} {at_place}, and while searching with {F} {he} finds out that the {animal} had it all along.",
    }.get(twist, "{H} loses {his} {obj} {at_place} and, with help from {F}, finds it again.")
    if not found:
        summary = ("{H} loses {his} {obj} {at_place}, and the {animal} {runs} off with it, so {he} never gets it back."
                   if twist else "{H} loses {his} {obj} {at_place} and never gets it back, even after a long search with {F}.")
    return [p1, p2, p3, p4], t.S(summary)


def _share(t):
    food = t.is_food
    play = "have a bite of" if food else "play with"
    hints = ["last"] if food else ["gentle"]
    hints.append("animal")
    hint = t.rng.choice(hints) if t.fore else None
    p1 = t.intro(obj=False)
    if food:
        p1.insert(len(p1) - 2, t.S("{Acap} gave {H} {a_obj} " + ("as a special treat." if t.v["obj"] in _TREATS else "from the garden."),
                                   "{H} had {a_obj}, and it looked so good."))
    else:
        p1.insert(len(p1) - 2, t.S("For {his} birthday, {H} got {a_obj}.",
                                   "{Acap} gave {H} {a_obj}, and {he} loved it more than anything."))
    if hint == "last":
        p1.append(t.set_hint("last", "{Acap} said it was the last {obj} in the whole house."))
    elif hint == "gentle":
        p1.append(t.set_hint("gentle", "{Acap} said the {obj} was special, so {H} had to be gentle with it."))
    elif hint == "animal":
        p1.append(t.set_hint(t.v["animal"], "{An_animal} lived near {the_place}, and everyone said it liked to take things that were left alone."))

    p2 = t.outing()
    p2 += [t.S("{F} saw the {obj} and {fhis} eyes grew wide."),
           t.say("F", "Can I " + play + " your {obj}?", "{F} asked if {fhe} could " + play + " the {obj} too."),
           t.say("H", "No! It is mine!", "But {H} held it close and said no.")]
    p3 = []
    if t.conflict:
        p3 += [t.S("{F} reached for the {obj}, and {H} pulled it away. They began to argue, and both of them got red in the face.",
                   "{F} grabbed one end of the {obj}, and {H} held on to the other. They began to argue and pull."),
               t.say("F", "You never share anything!", "{F} said that {H} never shared anything.")]
    else:
        p3.append(t.S("{F} looked down at {fhis} shoes and walked away slowly.",
                      "{F} did not say anything. {Fhe} just sat down on the grass, looking sad."))

    broken = "the {obj} ends up in the mud" if food else "the {obj} gets broken"
    if t.bad:
        steal = hint == "animal" or (t.twist and not hint and t.rng.random() < 0.5)
        if t.twist and not steal:
            p3.append(t.S("Then {F} said something surprising. It turned out {fhe} had only wanted to look at it for a moment, not keep it."))
        if steal:
            lead = "Just as everyone had said, the {animal} saw its chance." if hint == "animal" else "Then the {animal} saw its chance."
            p3.append(t.S(lead + " It grabbed the {obj} and {ran} away with it!"))
            if hint == "animal":
                p3.append(t.S("{H} remembered what everyone said about the {animal}, but it was too late."))
            if t.twist:
                p3.append(t.S("It turned out the {animal} had been waiting for this all along, and it was gone before anyone could move."))
            broken = "the {animal} {runs} off with the {obj}"
        elif hint == "gentle":
            p3.append(t.S("{H} remembered that {A} had told {him} to be gentle, but it was too late. {snap}"))
        elif hint == "last":
            p3.append(t.S("{H} remembered that it was the last {obj}, and {he} held it even tighter. Then it slipped out of {his} hands and fell in the mud."))
        else:
            p3.append(t.S("Then the {obj} slipped and fell in the mud." if food else "They pulled too hard. {snap}"))
        if t.conflict:
            p3.append(t.S("{H} and {F} stopped arguing. They both said sorry, but it did not help now."))
        p4 = [t.S("Now nobody could " + ("eat" if food else "play with") + " the {obj}. {H} and {F} sat side by side, sad and quiet."),
              t.S("{H} wished {he} had shared from the start.")]
        if t.moral:
            p4.append(t.S("{H} learned a sad lesson: if you do not share, nobody gets to have fun."))
        summary = "{H} will not share {his} {obj} with {F}, and in the end " + broken + ", so nobody can enjoy it."
        return [p1, p2, p3, p4], t.S(summary)

    if t.twist:
        p3.append(t.S("Then {F} held out a little flower. It turned out {fhe} had picked it for {H} all along, even after {H} said no!",
                      "Then, to everyone's surprise, {F} gave {H} half of {fhis} {food2}. It turned out {fhe} had brought it to share with {H} all along."))
        p3.append(t.S("{H} felt a little ashamed."))
    else:
        p3.append(t.S("{H} looked at {F}'s sad face and felt bad inside."))
    if hint == "animal":
        p3.append(t.S("Just then, {H} saw the {animal} creeping closer. {H} remembered what everyone said about it, so {he} picked up the {obj} just in time."))
    p3.append(t.say("H", "I am sorry. Let's share it!", "{H} said sorry and held out the {obj}."))
    if t.conflict:
        p3.append(t.S("{F} said sorry too, and the two of them agreed to take turns."))
    if hint == "gentle":
        p3.append(t.S("{H} remembered what {A} had said, so {he} showed {F} how to be gentle with it."))
    elif hint == "last":
        p3.append(t.S("{H} remembered that it was the last {obj}, so {he} broke it into two pieces, one for each of them."))
    if food:
        p4 = [t.S("{H} and {F} ate the {obj} together, and it tasted even better shared.", "{H} and {F} each had a piece of the {obj}, and they smiled at each other."),
              t.S("{H} was happy, and so was {F}.")]
    else:
        p4 = [t.S("{H} and {F} took turns with the {obj} all afternoon and laughed and laughed.", "{H} and {F} played with the {obj} together until it was time for dinner."),
              t.S("Playing together was much more fun than playing alone.", "{H} had never had so much fun.")]
    if t.moral:
        p4.append(t.S("{H} learned that sharing makes everything more fun.",
                      "That day, {H} learned that a friend is worth more than any toy." if not food else
                      "That day, {H} learned that good things are even better when you share them."))
    return [p1, p2, p3, p4], t.S("{H} does not want to share {his} {obj} with {F} at first, but in the end they enjoy it together.")


def _help(t):
    trouble = t.rng.choice(("stuck", "lost", "hungry"))
    hint = t.rng.choice(("food", "quiet")) if t.fore else None
    p1 = t.intro()
    if hint == "food":
        p1.append(t.set_hint(t.v["food"], "{Acap} put {a_food} in {his} {pocket}, just in case {he} got hungry."))
    elif hint == "quiet":
        p1.append(t.set_hint("quiet", "That morning, {A} had shown {H} how to be very still and quiet around animals."))
    p2 = t.outing(animal=False)
    where = "an old net" if t.kind in ("sea", "fresh") else "a thick bush"
    p2.append(t.S("Suddenly, they heard a tiny sound " + t.spot() + ". It was {an_animal}!",
                  "Near the path, {H} saw {an_animal}."))
    p2.append(t.S({"stuck": "It was stuck in " + where + " and could not get out.",
                   "lost": "It was all alone, and it looked lost.",
                   "hungry": "It looked thin and very hungry."}[trouble]))
    p2.append(t.say("H", "Poor little {animal}! We have to help it.", "{H} wanted to help the poor little {animal}."))
    p3 = []
    if t.conflict:
        p3 += [t.say("F", "Let's leave it alone. It might bite!", "{F} did not want to go near it, because it might bite."),
               t.S("{H} did not agree, and they began to argue."),
               t.S("In the end, {F} said sorry for shouting, and {fhe} agreed to help.")]
    if hint == "food":
        p3.append(t.S("Then {H} remembered the {food} in {his} {pocket}!"))
        if t.bad:
            p3.append(t.S("{He} held it out, but the {animal} was too scared to come close."))
        else:
            p3.append(t.S("{He} held it out, and the {animal} came closer to sniff it."))
    elif hint == "quiet":
        if t.bad:
            p3.append(t.S("{H} remembered to be quiet, just as {A} had shown {him}. But then {F} sneezed, very loudly."))
        else:
            p3.append(t.S("{H} remembered what {A} had shown {him}. {He} sat very still and quiet, and soon the {animal} came closer."))
    if t.bad:
        if t.twist:
            p3.append(t.S("But it turned out the {animal} did not want help at all. It grabbed {H}'s {obj} and {ran} off with it!"))
            p4 = [t.S("{H} went home feeling very sad. {He} never saw {his} {obj} again.")]
        else:
            p3.append(t.S("The {animal} was too scared. It {ran} away before they could help it."))
            p4 = [t.S("{H} looked for the {animal} every day after that, but {he} never saw it again, and that made {him} sad.",
                      "{H} went home feeling very sad. {He} hoped the little {animal} was all right.")]
        if t.moral:
            p4.append(t.S("{H} learned that wild animals can be scared of us, and that it is best to ask a grown-up for help."))
        summary = ("{H} tries to help {an_animal_word} {at_place}, but it {runs} off with {his} {obj} instead." if t.twist
                   else "{H} and {F} find {an_animal_word} in trouble {at_place}, but it {runs} away before they can help.")
        return [p1, p2, p3, p4], t.S(summary)

    p3.append(t.S({"stuck": "{H} and {F} gently pulled the branches apart, and the {animal} wiggled free." if where == "a thick bush"
                   else "{H} and {F} gently pulled the net apart, and the {animal} wiggled free.",
                   "lost": "{H} and {F} walked slowly along the path, and the {animal} followed them.",
                   "hungry": "{H} shared {a_food} with it, and it ate every crumb."}[trouble]))
    if t.twist:
        if trouble == "lost":
            p3.append(t.S("Then they heard a happy squeak. It turned out the {animal} was not lost at all! Its family had been just behind the next bush all along."))
        else:
            p3.append(t.S("On the way home, {H} dropped {his} {obj} without noticing. Then, to everyone's surprise, the {animal} came {running} after them with the {obj}! Now the {animal} was helping {H}."))
    p4 = [t.S("The {animal} looked at {H} one last time, then went happily on its way.",
              "The {animal} was safe now, and it went home happily."),
          t.say("H", "Goodbye, little {animal}!", "{H} waved goodbye to the little {animal}."),
          t.S("{H} felt warm and happy inside.", "{H} smiled all the way home.")]
    if t.moral:
        p4.append(t.S("{H} learned that being kind to animals is always the right thing to do.",
                      "That day, {H} learned that even a small {kid} can be a big help."))
    summary = {"stuck": "{H} and {F} find {an_animal_word} stuck {at_place} and set it free.",
               "lost": "{H} and {F} find {an_animal_word} that seems lost {at_place} and help it.",
               "hungry": "{H} and {F} find a hungry {animal} {at_place} and give it food."}[trouble]
    return [p1, p2, p3, p4], t.S(summary)


_DANGERS = {  # warning, what the hero does, what goes wrong, how it is fixed, how it ends badly
    "mud": ("stay away from the big mud puddle",
            "{H} wanted to jump right over the big mud puddle.",
            "{He} slipped, and {his} {obj} landed in the mud with a big splash!",
            "{Acap} helped {him} wash the {obj}, and soon it was clean again.",
            "The {obj} was covered in mud, and it was never the same again."),
    "tree": ("not climb the old tree, because its branches are weak",
             "{H} climbed up the old tree with {his} {obj} to see far away.",
             "Crack! A branch broke, and {his} {obj} fell to the ground. {H} was stuck up high.",
             "{Acap} came running and helped {him} down. The {obj} was fine, too.",
             "{Acap} helped {him} down, but the {obj} had landed on a sharp rock, and now it was broken."),
    "water": ("not play too close to the water",
              "{H} went right to the edge of the water to play with {his} {obj}.",
              "{His} foot slipped, and the {obj} fell into the water. It began to float away!",
              "{Acap} used a long stick to pull it back to the shore.",
              "The water carried the {obj} far away, and it was gone."),
    "shelf": ("not climb on the chairs to reach the high shelf",
              "{H} wanted the {obj} from the high shelf, so {he} pushed a chair over and climbed up.",
              "The chair wobbled, and {H} and the {obj} fell down with a bump!",
              "{Acap} gave {him} a big hug and checked that {he} was all right. The {obj} was fine, too.",
              "{Acap} helped {him} up, but the {obj} was broken, and it could not be fixed."),
}


def _rule(t):
    danger = {"in": "shelf", "sea": "water", "fresh": "water"}.get(t.kind) or t.rng.choice(("mud", "tree"))
    warn, act, oops, fix, ruin = _DANGERS[danger]
    payoff = {"mud": "the mud was very slippery.", "tree": "the branches of the old tree were weak.",
              "water": "it was not safe so close to the water.", "shelf": "climbing up to the shelf was not safe."}[danger]
    key = {"mud": "mud", "tree": "old tree", "water": "water", "shelf": "shelf"}[danger]
    p1 = t.intro()
    if t.fore:
        p1.append(t.say("A", "You may play, but please " + warn.replace("not ", "do not ", 1) + ".",
                        "{Acap} told {H} to " + warn + "."))
        t.hint = key
    p2 = t.outing()
    if t.conflict:
        p2 += [t.S(act),
               t.say("F", "Don't! It is not safe!", "{F} said it was not safe."),
               t.S("{H} did not agree, and they began to argue. {H} did it anyway.")]
    else:
        p2.append(t.S(act))
    p3 = [t.S(("Just as {A} had said, " + payoff + " " if t.fore else "") + oops)]
    p3.append(t.say("H", "Help! Help!", "{H} called for help."))
    if t.twist:
        p3.append(t.S("{H} was sure {A} would be angry. But to {his} surprise, {A} only laughed. It turned out {ahe} had done the very same thing when {ahe} was little!"))
    if not t.fore:  # without an early warning, the rule is only spelled out afterwards
        p3.append(t.say("A", "Next time, please " + warn.replace("not ", "do not ", 1) + ".",
                        "{Acap} told {him} that next time {he} should " + warn + "."))
    if t.conflict:
        p3.append(t.S("{H} told {F} that {fhe} had been right, and said sorry. {F} gave {him} a hug, and they were friends again."))
    if t.bad:
        p4 = [t.S(ruin), t.S("{H} cried and cried. {He} was very sad.", "{H} sat down and cried. It was a very sad day.")]
        if t.fore:
            p4.append(t.S("{He} remembered {A}'s words and wished {he} had listened."))
        if t.moral:
            p4.append(t.S("{H} learned the hard way that it is important to listen to grown-ups."))
        summary = "{H} does something risky {at_place} even though it is not safe, and {his} {obj} is ruined."
    else:
        p4 = [t.S(fix), t.say("H", "I am sorry. I will be more careful.", "{H} said sorry and promised to be more careful."),
              t.S("Then they all went home together, happy and safe.", "{H} smiled. It had been a big day, and it ended well.")]
        if t.fore:
            p4.insert(1, t.S("{H} remembered what {A} had said that morning."))
        if t.moral:
            p4.append(t.S("{H} learned that grown-ups make rules to keep us safe.",
                          "That day, {H} learned that it is always better to listen and be careful."))
        summary = "{H} does something risky {at_place}, gets into trouble, and is helped out by {A}."
    if t.fore:
        summary = summary.replace("even though it is not safe", "even though {A} warned {him}")
    return [p1, p2, p3, p4], t.S(summary)


def _fear(t):
    place = t.v["place"]
    if place in ("park", "playground", "school", "yard", "backyard", "fair"):
        fear = "the tall slide"
    elif t.kind in ("sea", "fresh"):
        fear = "the deep water"
    elif place in ("woods", "forest", "meadow", "field", "valley", "orchard", "hill", "campsite", "farm", "ranch"):
        fear = "the old wooden bridge"
    else:
        fear = "night"
    hint = None
    p1 = t.intro()
    if fear == "night":
        p1.append(t.S("{H} was brave about most things, but {he} was afraid of the dark."))
        if t.fore:
            p1.append(t.set_hint("branch", "Outside {his} window stood an old tree with a long, bony branch."))
        p2 = t.outing()
        p2.append(t.S("They had a wonderful time, and soon it was time to go home."))
        p3 = [t.S("That night, {H} heard a strange scratching sound at the window."),
              t.S("{He} pulled the blanket over {his} head and held {his} {obj} tight.")]
        p3.append(t.say("H", "{Acap}! There is something outside!", "{H} called for {A}."))
        if t.conflict:
            p3 += [t.S("{Acap} said it was nothing and {H} should go to sleep, but {H} did not agree. They began to argue."),
                   t.S("At last {A} sat down on the bed and said sorry for not listening, and {H} said sorry too.")]
        if t.fore:
            p3.append(t.S("Then {H} remembered the old tree with the long branch. Maybe it was only the branch!"))
        if t.twist:
            p3.append(t.S("{Acap} opened the curtain. It turned out the sound was {an_animal}, looking for a warm place to sleep!"))
        elif not t.bad:
            p3.append(t.S("{Acap} opened the curtain. It was only the branch, tapping on the glass in the wind."))
        if t.bad:
            p4 = [t.S("But {H} was still too scared to sleep. {He} lay awake all night, and in the morning {he} was tired and sad."),
                  t.S("{He} never liked the dark after that.")]
            if t.twist and t.v["_animal_seen"]:
                p4.insert(0, t.S("Even after the {animal} {ran} off, {H} could not stop shaking."))
            if t.moral:
                p4.append(t.S("{H} learned that being scared can stay with you if you do not talk about it."))
            return [p1, p2, p3, p4], t.S("{H} hears a scary sound at night and is too afraid to sleep.")
        p4 = [t.S("{H} laughed. There was nothing to be scared of after all."),
              t.S("{He} snuggled up with {his} {obj} and fell fast asleep.")]
        if t.moral:
            p4.append(t.S("{H} learned that many scary things are not scary at all once you look at them."))
        return [p1, p2, p3, p4], t.S("{H} is afraid of a strange sound at night, but it turns out to be nothing scary.")

    act = {"the tall slide": "go down the tall slide", "the deep water": "swim in the deep water",
           "the old wooden bridge": "walk across the old wooden bridge"}[fear]
    p1.append(t.S("{H} was brave about most things, but {he} was afraid of " + fear + " " + t.v["at_place"] + "."))
    if t.fore:
        p1.append(t.set_hint("anyway", "{Acap} always said that being brave means being scared and trying anyway."))
    p2 = t.outing()
    p2 += [t.S("{F} ran straight to " + fear + ", but {H} stopped and held {his} {obj} tight."),
           t.say("F", "Come on, it is fun!", "{F} called to {H} to come too."),
           t.say("H", "I am too scared.", "{H} said {he} was too scared.")]
    p3 = []
    if t.conflict:
        p3 += [t.say("F", "You are a scaredy-cat!", "{F} laughed and called {H} a scaredy-cat."),
               t.S("That made {H} cross, and they began to argue."),
               t.S("Then {F} saw that {H} was about to cry. {Fhe} said sorry and held out {fhis} hand.")]
    if t.twist:
        p3.append(t.S("Then {F} whispered something. It turned out {fhe} had been scared too, the very first time! {Fhe} had only been pretending to be brave."))
    if t.bad:
        if t.fore:
            p3.append(t.S("{H} remembered what {A} said about trying anyway, but {his} legs would not move."))
        p4 = [t.S("{H} never did " + act + " that day. {He} sat on the side, holding {his} {obj}, and watched the others play."),
              t.S("{He} felt sad and left out.")]
        if t.moral:
            p4.append(t.S("{H} learned that if you let fear win, you miss out on the fun."))
        return [p1, p2, p3, p4], t.S("{H} is too scared to " + act + " {at_place}, so {he} misses out on the fun with {F}.")
    if t.fore:
        p3.append(t.S("{H} remembered what {A} always said: being brave means being scared and trying anyway."))
    p3.append(t.S("{H} took a deep breath. {He} gave {his} {obj} to {F} to hold, and then {he} did it!"))
    p4 = [t.S({"the tall slide": "Whee! Down {he} went, faster and faster.",
               "the deep water": "Splash! The water was cool and lovely.",
               "the old wooden bridge": "Step by step, {he} walked all the way across."}[fear]),
          t.say("H", "I did it! Let's do it again!", "{H} laughed and wanted to do it again."),
          t.S("{H} and {F} played happily until the sun went down, and {H} was not scared anymore.")]
    if t.moral:
        p4.append(t.S("{H} learned that being brave means trying even when you feel scared."))
    return [p1, p2, p3, p4], t.S("{H} is afraid to " + act + " {at_place}, but with {F}'s help {he} finds the courage to do it.")


def _gift(t):
    hints = ["animal"] + (["box"] if t.v["obj"] != "box" else [])
    hint = t.rng.choice(hints) if t.fore else None
    p1 = t.intro()
    p1.append(t.S("It was almost {A}'s birthday, and {H} wanted to give {ahim} something special.",
                  "{Acap} had been very tired lately, and {H} wanted to make {ahim} smile."))
    p1.append(t.S("{H} decided to give {A} {his} {obj}, even though it was {his} favorite." if not t.is_food else
                  "{H} decided to save {his} {obj} for {A}, even though {he} wanted to eat it."))
    if hint == "animal":
        p1.append(t.set_hint(t.v["animal"], "{An_animal} had been watching the {obj} all morning with big, curious eyes."))
    elif hint == "box":
        p1.append(t.set_hint("box", "{H} saw {A} hide a little box behind {ahis} back, but {ahe} only smiled when {H} asked about it."))
    p2 = t.outing(go=t.S("{H} and {F} went to {the_place} to find something pretty to go with the present."))
    if t.conflict:
        p2 += [t.say("F", "{Acap} would like a picture much more!", "{F} said {A} would like a picture much more."),
               t.S("{H} did not agree, and they began to argue."),
               t.S("In the end, they agreed to give both: the {obj} from {H} and a picture from {F}.")]
    p2.append(t.S("{H} put the {obj} down on a rock while they picked some flowers."))
    p3 = [t.S("When {H} turned around, {an_animal} was {running} away with the {obj}!")]
    if hint == "animal":
        p3.append(t.S("{H} remembered how the {animal} had watched the {obj} all morning."))
    p3.append(t.say("H", "Stop! That is for {A}!", "{H} shouted at the {animal} to stop."))
    if t.bad:
        if t.twist:
            p3.append(t.S("They ran after it, and it turned out the {animal} did not want to eat the {obj} at all: it took it {hideout}, where nobody could reach."))
        else:
            p3.append(t.S("They ran and ran, but the {animal} was too fast. The {obj} was gone."))
        p4 = [t.S("{H} had no present for {A}. {He} cried all the way home."),
              t.S("{Acap} hugged {him} anyway, but {H} still felt very sad.")]
        if hint == "box":
            p4.append(t.S("That night, {H} remembered the little box {A} had hidden. It was a present for {H}, and that made {him} feel even sadder."))
        if t.moral:
            p4.append(t.S("{H} learned to keep special things safe until it is time to give them."))
        return [p1, p2, p3, p4], t.S("{H} wants to give {his} {obj} to {A} as a present, but the {animal} takes it away.")
    p3.append(t.S("They ran after it, and the {animal} dropped the {obj} by a tree. {H} picked it up and brushed it off."))
    p4 = [t.S("At home, {H} gave {A} the {obj} and the flowers.")]
    if t.twist:
        p4.append(t.S("{Acap} looked at the {obj} for a long time. It turned out {ahe} had had one just like it when {ahe} was little, and {ahe} had missed it ever since!"
                      if not t.is_food else "{Acap} laughed with joy. It turned out {ahe} had been wishing for " + _a(t.v["obj"]) + " all week!"))
    if hint == "box":
        p4.append(t.S("Then {A} took out the little box {H} had seen {ahim} hiding. {H} remembered it at once! Inside was a present for {H}, too."))
    p4 += [t.say("A", "Thank you! This is the best present ever.", "{Acap} said it was the best present ever."),
           t.S("{Acap} gave {H} a big hug, and {H} smiled from ear to ear.")]
    if t.moral:
        p4.append(t.S("{H} learned that giving can make you as happy as getting."))
    return [p1, p2, p3, p4], t.S("{H} wants to give {his} {obj} to {A}, gets it back from {an_animal_word} that {runs} off with it, and makes {A} very happy.")


def _try(t):
    swim = ("swim all the way to the big rock", "swam all the way to the big rock",
            "the waves pushed {him} back", "{He} tried again, and swallowed a big gulp of water.")
    goal, did, fail, again = {"sea": swim, "fresh": swim,
                              "farm": ("climb to the top of the hay pile", "climbed to the very top of the hay pile",
                                       "{he} slid back down", "{He} tried again, and slid down again."),
                              }.get(t.kind) or t.rng.choice((
        ("climb to the top of the big rock", "climbed to the very top of the big rock",
         "{he} slipped and slid back down", "{He} tried again, and slipped again."),
        ("jump over the little stream", "jumped right over the little stream",
         "{he} landed in the water with a splash", "{He} tried again, and got wet again."),
        ("hop across all the stepping stones", "hopped across all the stepping stones",
         "{he} wobbled and fell off", "{He} tried again, and fell off again.")))
    p1 = t.intro()
    p1.append(t.S("More than anything, {H} wanted to " + goal + "."))
    if t.fore:
        p1.append(t.set_hint("step", "{Acap} always said that big things are done one small step at a time."))
    p2 = t.outing()
    p2 += [t.S("{H} tried to " + goal + ", but " + fail + "."),
           t.S(again),
           t.say("H", "I will never do it!", "{H} said {he} would never be able to do it.")]
    p3 = []
    if t.conflict:
        p3 += [t.say("F", "You are too little to do it!", "{F} said {H} was too little to do it."),
               t.S("That made {H} cross, and they began to argue."),
               t.S("Then {F} saw how hard {H} was trying. {Fhe} said sorry and promised to cheer for {him}.")]
    if t.twist:
        p3.append(t.S("Then {F} tried too, and it turned out {fhe} could not do it either! So they tried together, helping each other."))
    if t.fore:
        p3.append(t.S("{H} remembered what {A} always said about one small step at a time, but {he} was in too much of a hurry." if t.bad
                      else "{H} remembered what {A} always said: one small step at a time."))
    if t.bad:
        p3.append(t.S("{H} tried one more time, but {he} fell and hurt {his} knee." if swim[0] != goal else
                      "{H} tried one more time, but {he} got so tired that {A} had to pull {him} out."))
        p4 = [t.S("{He} went home and cried, holding {his} {obj}."), t.S("{H} was sad, and {he} never tried again.")]
        if t.moral:
            p4.append(t.S("{H} learned that it is important to be careful and to ask for help before it is too late."))
        return [p1, p2, p3, p4], t.S("{H} tries hard to " + goal + " {at_place}, but {he} cannot do it and gives up.")
    p3.append(t.S("{H} went slowly and carefully, and {he} did not give up."))
    p4 = [t.S("At last, {H} " + did + "! {He} held up {his} {obj} and cheered."),
          t.say("F", "You did it, {H}!", "{F} clapped and cheered for {him}."),
          t.S("{H} felt proud and happy all the way home.")]
    if t.moral:
        p4.append(t.S("{H} learned that if you keep trying, you can do hard things."))
    return [p1, p2, p3, p4], t.S("{H} keeps trying to " + goal + " {at_place} and finally does it, with {F} cheering.")


def _newfriend(t):
    hint = (t.rng.choice(("truck", "boxes")) if "truck" not in (t.v["obj"], t.sight) else "boxes") if t.fore else None
    p1 = t.intro(friend=False)
    p1.append(t.S("{H} often wished {he} had a friend to play with.", "There were no other " + ("children" if t.hero_kid in ("girl", "boy") else t.hero_kid + "s") + " nearby, and {H} had no friend to play with."))
    if hint == "truck":
        p1.append(t.set_hint("truck", "That morning, a big truck stopped at the empty house next door, but {H} was too busy to look."))
    elif hint == "boxes":
        p1.append(t.set_hint("boxes", "That morning, {H} saw lots of boxes being carried into the empty house next door."))
    fk = t.friend_kid
    meet = [t.S("There, {H} saw " + _a(fk) + " {he} had never seen before, sitting all alone."),
            t.say("H", "Hi! I am {H}. What is your name?", "{H} walked over and said hello. The " + fk + " said {fhis} name was {F}.")]
    if t.dialogue:
        meet.append(t.say("F", "I am {F}.", ""))
    if t.twist:
        meet.append(t.S("At first {F} seemed grumpy and did not smile. But it turned out {fhe} was just shy, and {fhe} had been hoping someone would say hello all along."))
    go = t.S("One day, {A} took {H} to {the_place}.", "That afternoon, {H} went to {the_place} with {A}.")
    p2 = t.outing(go=go, meet=meet)
    p3 = []
    if hint:
        p3.append(t.S("Then {H} remembered the " + ("big truck" if hint == "truck" else "boxes") + " next door. {F} must be the new " + fk + " who had just moved in!"))
    if t.conflict:
        p3 += [t.S("{F} wanted to play tag, but {H} wanted to play with {his} {obj}. They started to argue."),
               t.S("Then {H} had an idea: first tag, then the {obj}. {F} agreed, and they shook hands.")]
    else:
        p3.append(t.S("{H} showed {F} {his} {obj}, and they played with it together."))
    if t.bad:
        p4 = [t.S("But the next day, {F}'s family had to move far away. {H} waved goodbye with tears in {his} eyes."),
              t.S("{He} never saw {F} again, and {he} was sad for a long time.")]
        if t.moral:
            p4.append(t.S("{H} learned that even a short friendship is special."))
        return [p1, p2, p3, p4], t.S("{H} makes a new friend, {F}, {at_place}, but {F} soon has to move far away.")
    p4 = [t.say("F", "Can we play again tomorrow?", "{F} asked if they could play again tomorrow."),
          t.S("From that day on, {H} and {F} were best friends, and {H} was never lonely again.")]
    if t.moral:
        p4.append(t.S("{H} learned that saying hello is the first step to making a new friend."))
    return [p1, p2, p3, p4], t.S("{H} feels lonely until {he} meets {F} {at_place}, and they become best friends.")


_ALL = ("out", "farm", "zoo", "wild", "sea", "fresh", "in")
PLOTS = (
    _Plot("lost", _ALL, _lost),
    _Plot("share", _ALL, _share),
    _Plot("help", ("out", "farm", "sea", "fresh", "wild"), _help),
    _Plot("rule", ("out", "farm", "sea", "fresh", "in"), _rule),
    _Plot("fear", _ALL, _fear),
    _Plot("gift", _ALL, _gift),
    _Plot("try", ("out", "farm", "sea", "fresh"), _try),
    _Plot("newfriend", _ALL, _newfriend),
)


# ---------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------

def _arrange(paragraphs, rng):
    """Split long paragraphs and join short neighbours, so stories have 2 to 5 paragraphs
    of varied length, as real ones do. The first paragraph is never touched, so a
    foreshadowing hint always comes before its payoff."""
    paras = [[s for s in p if s] for p in paragraphs]
    paras = [p for p in paras if p]
    i = 1
    while i < len(paras):
        p = paras[i]
        if len(p) >= 6 and rng.random() < 0.5:
            cut = len(p) // 2 + rng.randint(-1, 1)
            paras[i:i + 1] = [p[:cut], p[cut:]]
            i += 1
        i += 1
    i = len(paras) - 1
    while i >= 2:
        if len(paras) > 5 or rng.random() < 0.2:
            paras[i - 1] += paras.pop(i)
        i -= 1
    return "\n\n".join(" ".join(p) for p in paras)


def make_story(rng: random.Random) -> dict:
    """One story with its instruct metadata, drawn from `rng`."""
    verb, noun, adj = rng.choice(VERB_LIST), rng.choice(NOUNS), rng.choice(ADJECTIVES)
    features = [f for f in FEATURES if rng.random() < FEATURE_PROB]
    group = _NOUN_GROUP[noun]
    plots = [p for p in PLOTS
             if (group != "place" or p.allows(noun))
             and not (p.name == "newfriend" and group == "kid" and noun != "friend")]  # a sister is no new friend
    for _ in range(20):  # about 1 story in 1,500 runs long and is told again with other choices
        plot = rng.choice(plots)
        t = _Teller(rng, verb, noun, adj, features, plot)
        paragraphs, summary = plot.fn(t)
        story = _arrange(paragraphs, rng)
        n = len(story.split())
        if 80 <= n <= 300:
            break
    return {"story": story, "words": [verb, noun, adj], "features": features, "summary": summary,
            "characters": t.characters, "plot": plot.name, "hint": t.hint}


def generate_stories(num_stories: int, seed: int) -> Iterator[dict]:
    """`num_stories` records; story i depends only on (seed, i)."""
    for i in range(num_stories):
        yield make_story(random.Random(f"tinystories-{seed}-{i}"))


def instruct_text(record: dict) -> str:
    """The TinyStories-Instruct form of a record (the Features line is left out when empty)."""
    lines = ["Features: " + ", ".join(record["features"])] if record["features"] else []
    lines += ["Words: " + ", ".join(record["words"]), "Summary: " + record["summary"], "Story: \n" + record["story"]]
    return "\n".join(lines)


if __name__ == "__main__":
    for rec in generate_stories(3, seed=0):
        print(instruct_text(rec), end="\n\n---\n\n")
