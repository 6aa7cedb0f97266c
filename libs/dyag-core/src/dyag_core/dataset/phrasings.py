"""The question phrasings, as data: at least five per question type, with the placeholders of templates.py's docstring
({x} {X} {de_x} {que_x} {name}; {a} {A} {b} {de_b}; {adj} {verb}). The registry (registry.py) gives each intent its
phrasings from here; the generator asks them, the intent classifier learns them.
"""

from __future__ import annotations

PHRASINGS: dict[str, tuple[str, ...]] = {
    "definition": (
        "Qu'est-ce {que_x} ?",
        "À quoi sert {x} ?",
        "Peux-tu me présenter {x} ?",
        "Que fait l'application {name} ?",
        "Explique-moi ce qu'est {x}.",
        "Quel est le rôle {de_x} ?",
        "Décris-moi {x} en quelques phrases.",
    ),
    "status": (
        "Quel est le statut {de_x} ?",
        "Où en est {x} ?",
        "{X} est-elle en production ?",
        "Dans quel état se trouve l'application {name} ?",
        "Peux-tu me dire le statut {de_x} ?",
        "Quel est l'état actuel {de_x} ?",
        "Quelle est la situation de {x} dans son cycle de vie ?",
    ),
    "domain": (
        "Dans quel domaine est {x} ?",
        "À quel domaine métier appartient {x} ?",
        "Quel est le domaine {de_x} ?",
        "De quel domaine relève {x} ?",
        "Dans quel secteur d'activité se situe {x} ?",
        "Peux-tu me donner le domaine et le sous-domaine {de_x} ?",
    ),
    "actors": (
        "Qui gère {x} ?",
        "Quels sont les acteurs {de_x} ?",
        "Qui est responsable {de_x} ?",
        "Quelles organisations interviennent sur {x} ?",
        "Qui porte l'application {name} ?",
        "Quels services sont impliqués dans {x} ?",
    ),
    "sites": (
        "Où trouver {x} ?",
        "Quelle est l'adresse {de_x} ?",
        "Quel est le site web {de_x} ?",
        "Comment accéder à {x} ?",
        "Quelle est l'URL {de_x} ?",
        "Où puis-je consulter {x} en ligne ?",
    ),
    "contacts": (
        "Qui contacter pour {x} ?",
        "Quels sont les contacts {de_x} ?",
        "À qui m'adresser pour une question sur {x} ?",
        "Qui est l'interlocuteur pour {x} ?",
        "Peux-tu me donner un contact pour {x} ?",
        "Quelle personne est référente pour l'application {name} ?",
    ),
    "scope": (
        "Quelle est la portée géographique {de_x} ?",
        "{X} est-elle nationale ou locale ?",
        "Sur quel territoire est déployée {x} ?",
        "Quelle est l'échelle géographique {de_x} ?",
        "À quel niveau géographique intervient {x} ?",
        "Quelle zone géographique couvre l'application {name} ?",
    ),
    "events": (
        "Quelles sont les dates clés {de_x} ?",
        "Quel est l'historique {de_x} ?",
        "Quels événements ont marqué {x} ?",
        "Peux-tu me donner la chronologie {de_x} ?",
        "Quelles sont les grandes étapes de la vie {de_x} ?",
        "Quels jalons sont enregistrés pour l'application {name} ?",
    ),
    # 0-5: applications liées; 6-11: données liées.
    "related": (
        "Quelles applications sont liées à {x} ?",
        "Avec quelles applications {x} échange-t-elle ?",
        "Quelles sont les applications connectées à {x} ?",
        "{X} est-elle reliée à d'autres applications ?",
        "Quels flux relient {x} à d'autres applications ?",
        "Avec quels autres systèmes l'application {name} communique-t-elle ?",
        "Quelles données sont liées à {x} ?",
        "Quelles données {x} utilise-t-elle ?",
        "Sur quelles données s'appuie {x} ?",
        "Quels jeux de données sont associés à {x} ?",
        "Quelles données échange {x} ?",
        "Quelles sont les données rattachées à l'application {name} ?",
    ),
    "comparative": (
        "Différence entre {a} et {b} ?",
        "Quelle est la différence entre {a} et {b} ?",
        "Peux-tu comparer {a} et {b} ?",
        "En quoi {a} se distingue-t-elle {de_b} ?",
        "Compare {a} et {b}.",
        "{A} ou {b} : qu'est-ce qui les différencie ?",
    ),
    "listing": (
        "Liste des applications {adj}",
        "Quelles applications {verb} ?",
        "Quelles sont les applications {adj} ?",
        "Peux-tu lister les applications {adj} ?",
        "Donne-moi la liste des applications {adj}.",
        "Quelles applications du catalogue {verb} ?",
    ),
    "counting": (
        "Combien d'applications {verb} ?",
        "Quel est le nombre d'applications {adj} ?",
        "Combien d'applications du catalogue {verb} ?",
        "Peux-tu me dire combien d'applications {verb} ?",
        "Combien y a-t-il d'applications {adj} ?",
        "Quel est le nombre total d'applications {adj} dans le catalogue ?",
    ),
}
# Phrasings of the fields the dataset does not generate yet (dyag_core.dataset.registry answers them all).
PHRASINGS.update(
    {
        "identifier": (
            "Quel est l'identifiant {de_x} ?",
            "Quel est l'id {de_x} dans le catalogue ?",
            "Sous quel numéro {x} est-elle référencée ?",
            "Donne-moi l'identifiant de l'application {name}.",
            "Quel code identifie {x} dans le catalogue ?",
        ),
        "long_name": (
            "Quel est le nom long {de_x} ?",
            "Que signifie le sigle {name} ?",
            "Quel est le nom complet {de_x} ?",
            "Que veut dire {name} ?",
            "Quelle est la signification de l'acronyme {name} ?",
            "Comment s'appelle {x} en entier ?",
        ),
        "family": (
            "À quelle famille d'applications appartient {x} ?",
            "Quelle est la famille {de_x} ?",
            "Dans quelle famille d'applications est classée {x} ?",
            "De quel type d'application relève {x} ?",
            "Quelle catégorie d'applications pour {x} ?",
        ),
        "functions": (
            "Quelles sont les fonctions {de_x} ?",
            "Quelles fonctionnalités offre {x} ?",
            "Que permet de faire {x} ?",
            "Quelles fonctions assure l'application {name} ?",
            "Liste les fonctionnalités {de_x}.",
        ),
        "technology": (
            "Quelle est la technologie principale {de_x} ?",
            "Avec quelle technologie est développée {x} ?",
            "Sur quelle pile technique repose {x} ?",
            "Quel langage utilise l'application {name} ?",
            "En quoi est codée {x} ?",
            "Quelle stack technique pour {x} ?",
        ),
        "hosting": (
            "Où est hébergée {x} ?",
            "Quel est l'hébergement {de_x} ?",
            "Dans quel data center tourne {x} ?",
            "Sur quelles plateformes est hébergée l'application {name} ?",
            "Quel centre serveur héberge {x} ?",
        ),
        "beneficiaries": (
            "Quels sont les bénéficiaires {de_x} ?",
            "À qui profite {x} ?",
            "Qui bénéficie de l'application {name} ?",
            "Pour quels publics est conçue {x} ?",
            "Qui sont les usagers visés par {x} ?",
        ),
        "users": (
            "Qui sont les utilisateurs {de_x} ?",
            "Combien d'utilisateurs a {x} ?",
            "Qui utilise l'application {name} ?",
            "Quels publics utilisent {x}, et combien sont-ils ?",
            "Quel est le nombre d'utilisateurs {de_x} ?",
        ),
        "summary": (
            "Dis-moi tout sur {x}.",
            "Que sait-on de {x} ?",
            "Donne-moi la fiche complète {de_x}.",
            "Résume-moi l'application {name}.",
            "Quelles informations as-tu sur {x} ?",
            "Fais-moi une synthèse sur {x}.",
            "Présente-moi tout ce que le catalogue dit {de_x}.",
        ),
    }
)
STATUS_YES_NO = 2  # "{X} est-elle en production ?" gets a oui/non answer
RELATED_APPLICATIONS = tuple(range(0, 6))
RELATED_DATA = tuple(range(6, 12))

# The empty-field negatives ask the question of the role the record leaves empty: role -> (type, phrasing indices).
EMPTY_FIELD_SOURCES: dict[str, tuple[str, tuple[int, ...]]] = {
    "description": ("definition", tuple(range(len(PHRASINGS["definition"])))),
    "status": ("status", tuple(range(len(PHRASINGS["status"])))),
    "domains": ("domain", tuple(range(len(PHRASINGS["domain"])))),
    "actors": ("actors", tuple(range(len(PHRASINGS["actors"])))),
    "sites": ("sites", tuple(range(len(PHRASINGS["sites"])))),
    "contacts": ("contacts", tuple(range(len(PHRASINGS["contacts"])))),
    "scope": ("scope", tuple(range(len(PHRASINGS["scope"])))),
    "events": ("events", tuple(range(len(PHRASINGS["events"])))),
    "related_applications": ("related", RELATED_APPLICATIONS),
    "related_data": ("related", RELATED_DATA),
}
# A flat table so that a template id stays "<qtype>.<index>": index -> (role, source phrasing).
EMPTY_FIELD_PHRASINGS: tuple[tuple[str, str], ...] = tuple(
    (role, PHRASINGS[qtype][i]) for role, (qtype, indices) in EMPTY_FIELD_SOURCES.items() for i in indices
)
# Unknown-entity negatives ask the everyday questions about a name the catalog does not hold.
UNKNOWN_ENTITY_PHRASINGS: tuple[str, ...] = tuple(
    text for qtype in ("definition", "status", "domain", "actors", "sites") for text in PHRASINGS[qtype]
)
