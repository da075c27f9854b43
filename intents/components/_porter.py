"""A compact implementation of the Porter (1980) English suffix-stripping stemmer.

Pure Python, no dependencies; used by the intent classifier to conflate English word
forms ("charged", "charges", "charging" -> "charg"). Only ASCII lowercase words are
passed in; anything else is returned unchanged by the caller.
"""
_V = "aeiou"
def _cons(w, i):
    c = w[i]
    if c in _V: return False
    if c == "y": return i == 0 or not _cons(w, i - 1)
    return True
def _m(stem):
    # number of VC sequences
    n = 0; i = 0; L = len(stem)
    while i < L and _cons(stem, i): i += 1
    while i < L:
        while i < L and not _cons(stem, i): i += 1
        if i >= L: break
        n += 1
        while i < L and _cons(stem, i): i += 1
    return n
def _hasv(stem): return any(not _cons(stem, i) for i in range(len(stem)))
def _dc(w): return len(w) >= 2 and w[-1] == w[-2] and _cons(w, len(w) - 1)
def _cvc(w):
    if len(w) < 3: return False
    return _cons(w, len(w)-3) and not _cons(w, len(w)-2) and _cons(w, len(w)-1) and w[-1] not in "wxy"
def _rep(w, rules, cond):
    for suf, rep in rules:
        if w.endswith(suf):
            stem = w[: len(w) - len(suf)]
            return (stem + rep) if cond(stem) else w
    return w
_S2 = [("ational","ate"),("tional","tion"),("enci","ence"),("anci","ance"),("izer","ize"),("bli","ble"),("alli","al"),("entli","ent"),("eli","e"),("ousli","ous"),("ization","ize"),("ation","ate"),("ator","ate"),("alism","al"),("iveness","ive"),("fulness","ful"),("ousness","ous"),("aliti","al"),("iviti","ive"),("biliti","ble"),("logi","log")]
_S3 = [("icate","ic"),("ative",""),("alize","al"),("iciti","ic"),("ical","ic"),("ful",""),("ness","")]
_S4 = ["al","ance","ence","er","ic","able","ible","ant","ement","ment","ent","ion","ou","ism","ate","iti","ous","ive","ize"]
def stem(w):
    if len(w) <= 2: return w
    # 1a
    if w.endswith("sses"): w = w[:-2]
    elif w.endswith("ies"): w = w[:-2]
    elif w.endswith("ss"): pass
    elif w.endswith("s"): w = w[:-1]
    # 1b
    flag = False
    if w.endswith("eed"):
        if _m(w[:-3]) > 0: w = w[:-1]
    elif w.endswith("ed") and _hasv(w[:-2]): w = w[:-2]; flag = True
    elif w.endswith("ing") and _hasv(w[:-3]): w = w[:-3]; flag = True
    if flag:
        if w.endswith(("at","bl","iz")): w += "e"
        elif _dc(w) and w[-1] not in "lsz": w = w[:-1]
        elif _m(w) == 1 and _cvc(w): w += "e"
    # 1c
    if w.endswith("y") and _hasv(w[:-1]): w = w[:-1] + "i"
    w = _rep(w, sorted(_S2, key=lambda r: -len(r[0])), lambda s: _m(s) > 0)
    w = _rep(w, sorted(_S3, key=lambda r: -len(r[0])), lambda s: _m(s) > 0)
    for suf in sorted(_S4, key=len, reverse=True):
        if w.endswith(suf):
            s = w[: len(w) - len(suf)]
            if suf == "ion":
                if _m(s) > 1 and s and s[-1] in "st": w = s
            elif _m(s) > 1: w = s
            break
    # 5a
    if w.endswith("e"):
        s = w[:-1]; m = _m(s)
        if m > 1 or (m == 1 and not _cvc(s)): w = s
    # 5b
    if _m(w) > 1 and _dc(w) and w.endswith("l"): w = w[:-1]
    return w
