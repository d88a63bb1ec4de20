"""The animal-diet dataset (the course's in-context learning example): animal -> diet.

Written by the project from general zoology. Insect-, fish- and blood-eaters count as carnivores;
animals whose diet is disputed or varies strongly by population are left out on purpose.
"""

CARNIVORES = """
lion, tiger, leopard, cheetah, jaguar, snow leopard, cougar, lynx, bobcat, ocelot, serval, caracal,
clouded leopard, gray wolf, African wild dog, polar bear, spotted hyena, weasel, stoat, ferret,
mink,
wolverine, river otter, sea otter, harbor seal, leopard seal, walrus, sea lion, killer whale,
bottlenose dolphin, sperm whale, narwhal, beluga whale, great white shark, tiger shark, hammerhead
shark,
barracuda, northern pike, moray eel, anglerfish, swordfish, bluefin tuna, bald eagle, golden eagle,
peregrine falcon, red-tailed hawk, osprey, barn owl, snowy owl, kingfisher, brown pelican,
emperor penguin, albatross, great blue heron, white stork, turkey vulture, secretary bird,
cormorant,
Atlantic puffin, Nile crocodile, American alligator, gharial, Komodo dragon, king cobra,
reticulated python, rattlesnake, boa constrictor, green anaconda, chameleon, leopard gecko,
common frog, cane toad, fire salamander, axolotl, praying mantis, tarantula, scorpion, dragonfly,
ladybug, centipede, octopus, squid, box jellyfish, sea star, giant anteater, aardvark, pangolin,
European mole, common shrew, Tasmanian devil, fossa, harpy eagle, mako shark, electric eel
"""

HERBIVORES = """
African elephant, giraffe, zebra, horse, donkey, cow, sheep, goat, white-tailed deer, moose, elk,
reindeer, American bison, water buffalo, yak, dromedary camel, llama, alpaca, hippopotamus,
white rhinoceros, Malayan tapir, okapi, impala, Thomson's gazelle, wildebeest, red kangaroo,
wallaby,
koala, wombat, giant panda, red panda, three-toed sloth, manatee, dugong, rabbit, brown hare,
guinea pig, chinchilla, capybara, beaver, porcupine, groundhog, mountain gorilla, green iguana,
Galapagos tortoise, green sea turtle, scarlet macaw, budgerigar, Canada goose, mute swan,
grasshopper, aphid, garden snail, honeybee, monarch butterfly, silkworm, quokka, pika, marmot,
prairie dog, mountain goat, ibex, bighorn sheep, musk ox, pronghorn, springbok, greater kudu, eland,
oryx, dik-dik, gerenuk, vicuna, howler monkey, Indian flying fox, colobus monkey,
sea urchin, parrotfish, caterpillar
"""

OMNIVORES = """
human, chimpanzee, bonobo, olive baboon, brown bear, American black bear, raccoon, Virginia opossum,
striped skunk, European badger, pig, wild boar, warthog, red fox, coyote, golden jackal, chicken,
American crow, common raven, magpie, herring gull, ostrich, emu, mallard duck, wild turkey,
pheasant, brown rat, house mouse, hamster, chipmunk, box turtle, painted turtle, bearded dragon,
goldfish, common carp, channel catfish, red-bellied piranha, tilapia, blue crab, American lobster,
crayfish, cockroach, fire ant, sugar glider, coati, sun bear, spectacled bear, binturong,
capuchin monkey, rhesus macaque, ring-tailed lemur, common marmoset, American robin, blue jay,
European starling, house sparrow, American flamingo, kiwi, African civet
"""


def parse_names(block: str) -> list[str]:
    """Split a comma-separated block of names."""
    return [name.strip() for name in block.replace("\n", " ").split(",") if name.strip()]


def animal_rows() -> list[dict]:
    """All animals as ``{"text": name, "label": diet}`` rows (ids are given by the splitter)."""
    rows = []
    for label, block in (
        ("carnivore", CARNIVORES),
        ("herbivore", HERBIVORES),
        ("omnivore", OMNIVORES),
    ):
        rows += [{"text": name, "label": label} for name in parse_names(block)]
    return rows
