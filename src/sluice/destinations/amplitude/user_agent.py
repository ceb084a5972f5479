"""Segment's `parseUserAgentProperties`: @amplitude/ua-parser-js 0.7.33, for what Amplitude uses.

Segment sends `os_name` (the OS, else the browser), `os_version` (the browser's major version,
not the OS's), `device_manufacturer`, `device_model` (else the OS name) and `device_type`. The
parser tries rules in order, the first pattern that matches wins, and each rule names what its
capture groups are. Its browser, system and device tables are reproduced here whole (its CPU
and engine tables are not: Segment reads neither), since a rule left out would let a later,
broader one match instead (ua-parser-js finds an Oculus Quest in "python-requests").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

UA_MAX_LENGTH = 350
# A rule's properties, one per capture group in order: a name takes the group's text; (name,
# text) sets a constant (the group is still counted); (name, function) maps the group's text
# (None when the group did not take part).
Prop = str | tuple[str, str] | tuple[str, Callable[[str | None], str | None]]
Rule = tuple[Sequence[re.Pattern[str]], Sequence[Prop]]


def _rules(*pairs: tuple[Sequence[str], Sequence[Prop]]) -> list[Rule]:
    return [([re.compile(p, re.I | re.A) for p in patterns], props) for patterns, props in pairs]


def _suffix(text: str) -> Callable[[str | None], str | None]:
    return lambda found: f"{found}{text}" if found else None


def _prefix(text: str) -> Callable[[str | None], str | None]:
    return lambda found: f"{text}{found}" if found else None


def _spaced(found: str | None) -> str | None:
    return found.replace("_", " ") if found else None


def _trim(found: str | None) -> str | None:
    """ua-parser-js' `trim`, which (unlike the other mappers) keeps an empty match."""
    return found.lstrip() if found is not None else None


_OLD_SAFARI = (
    ("1.0", "/8"),
    ("1.2", "/1"),
    ("1.3", "/3"),
    ("2.0", "/412"),
    ("2.0.2", "/416"),
    ("2.0.3", "/417"),
    ("2.0.4", "/419"),
)


def _old_safari(build: str | None) -> str | None:
    """Safari before 3 had no `Version/`: its build number names the version, if known."""
    if not build:
        return None
    return next((version for version, token in _OLD_SAFARI if token in build.lower()), None)


# fmt: off
V, N = "version", "name"
M, B, T = "model", "vendor", "type"
MOBILE, TABLET, CONSOLE, SMARTTV = ((T, t) for t in ("mobile", "tablet", "console", "smarttv"))
APPLE, SAMSUNG, GOOGLE, HUAWEI, XIAOMI, SONY, AMAZON, ASUS, SHARP, MICROSOFT, NVIDIA, ZEBRA = (
    (B, maker) for maker in ("Apple", "Samsung", "Google", "Huawei", "Xiaomi", "Sony", "Amazon",
                             "ASUS", "Sharp", "Microsoft", "Nvidia", "Zebra"))

BROWSERS = _rules(
    ([r"\b(?:crmo|crios)\/([\w\.]+)"], [V, (N, "Chrome")]),
    ([r"edg(?:e|ios|a)?\/([\w\.]+)"], [V, (N, "Edge")]),
    ([r"(opera mini)\/([-\w\.]+)", r"(opera [mobiletab]{3,6})\b.+version\/([-\w\.]+)",
      r"(opera)(?:.+version\/|[\/ ]+)([\w\.]+)"], [N, V]),
    ([r"opios[\/ ]+([\w\.]+)"], [V, (N, "Opera Mini")]),
    ([r"\bopr\/([\w\.]+)"], [V, (N, "Opera")]),
    ([r"(kindle)\/([\w\.]+)", r"(lunascape|maxthon|netfront|jasmine|blazer)[\/ ]?([\w\.]*)",
      r"(avant |iemobile|slim)(?:browser)?[\/ ]?([\w\.]*)", r"(ba?idubrowser)[\/ ]?([\w\.]+)",
      r"(?:ms|\()(ie) ([\w\.]+)",
      r"(flock|rockmelt|midori|epiphany|silk|skyfire|ovibrowser|bolt|iron|vivaldi|iridium|"
      r"phantomjs|bowser|quark|qupzilla|falkon|rekonq|puffin|brave|whale|qqbrowserlite|qq|"
      r"duckduckgo)\/([-\w\.]+)", r"(weibo)__([\d\.]+)"], [N, V]),
    ([r"(?:\buc? ?browser|(?:juc.+)ucweb)[\/ ]?([\w\.]+)"], [V, (N, "UCBrowser")]),
    ([r"microm.+\bqbcore\/([\w\.]+)", r"\bqbcore\/([\w\.]+).+microm"],
     [V, (N, "WeChat(Win) Desktop")]),
    ([r"micromessenger\/([\w\.]+)"], [V, (N, "WeChat")]),
    ([r"konqueror\/([\w\.]+)"], [V, (N, "Konqueror")]),
    ([r"trident.+rv[: ]([\w\.]{1,9})\b.+like gecko"], [V, (N, "IE")]),
    ([r"yabrowser\/([\w\.]+)"], [V, (N, "Yandex")]),
    ([r"(avast|avg)\/([\w\.]+)"], [(N, _suffix(" Secure Browser")), V]),
    ([r"\bfocus\/([\w\.]+)"], [V, (N, "Firefox Focus")]),
    ([r"\bopt\/([\w\.]+)"], [V, (N, "Opera Touch")]),
    ([r"coc_coc\w+\/([\w\.]+)"], [V, (N, "Coc Coc")]),
    ([r"dolfin\/([\w\.]+)"], [V, (N, "Dolphin")]),
    ([r"coast\/([\w\.]+)"], [V, (N, "Opera Coast")]),
    ([r"miuibrowser\/([\w\.]+)"], [V, (N, "MIUI Browser")]),
    ([r"fxios\/([-\w\.]+)"], [V, (N, "Firefox")]),
    ([r"\bqihu|(qi?ho?o?|360)browser"], [(N, "360 Browser")]),
    ([r"(oculus|samsung|sailfish|huawei)browser\/([\w\.]+)"], [(N, _suffix(" Browser")), V]),
    ([r"(comodo_dragon)\/([\w\.]+)"], [(N, _spaced), V]),
    ([r"(electron)\/([\w\.]+) safari", r"(tesla)(?: qtcarbrowser|\/(20\d\d\.[-\w\.]+))",
      r"m?(qqbrowser|baiduboxapp|2345Explorer)[\/ ]?([\w\.]+)"], [N, V]),
    ([r"(metasr)[\/ ]?([\w\.]+)", r"(lbbrowser)", r"\[(linkedin)app\]"], [N]),
    ([r"((?:fban\/fbios|fb_iab\/fb4a)(?!.+fbav)|;fbav\/([\w\.]+);)"], [(N, "Facebook"), V]),
    ([r"safari (line)\/([\w\.]+)", r"\b(line)\/([\w\.]+)\/iab",
      r"(chromium|instagram)[\/ ]([-\w\.]+)"], [N, V]),
    ([r"\bgsa\/([\w\.]+) .*safari\/"], [V, (N, "GSA")]),
    ([r"headlesschrome(?:\/([\w\.]+)| )"], [V, (N, "Chrome Headless")]),
    ([r" wv\).+(chrome)\/([\w\.]+)"], [(N, "Chrome WebView"), V]),
    ([r"droid.+ version\/([\w\.]+)\b.+(?:mobile safari|safari)"], [V, (N, "Android Browser")]),
    ([r"(chrome|omniweb|arora|[tizenoka]{5} ?browser)\/v?([\w\.]+)"], [N, V]),
    ([r"version\/([\w\.\,]+) .*mobile\/\w+ (safari)"], [V, (N, "Mobile Safari")]),
    ([r"version\/([\w(\.|\,)]+) .*(mobile ?safari|safari)"], [V, N]),
    ([r"webkit.+?(mobile ?safari|safari)(\/[\w\.]+)"], [N, (V, _old_safari)]),
    ([r"(webkit|khtml)\/([\w\.]+)"], [N, V]),
    ([r"(navigator|netscape\d?)\/([-\w\.]+)"], [(N, "Netscape"), V]),
    ([r"mobile vr; rv:([\w\.]+)\).+firefox"], [V, (N, "Firefox Reality")]),
    ([r"ekiohf.+(flow)\/([\w\.]+)", r"(swiftfox)",
      r"(icedragon|iceweasel|camino|chimera|fennec|maemo browser|minimo|conkeror|klar)[\/ ]?"
      r"([\w\.\+]+)",
      r"(seamonkey|k-meleon|icecat|iceape|firebird|phoenix|palemoon|basilisk|waterfox)\/"
      r"([-\w\.]+)$",
      r"(firefox)\/([\w\.]+)", r"(mozilla)\/([\w\.]+) .+rv\:.+gecko\/\d+",
      r"(polaris|lynx|dillo|icab|doris|amaya|w3m|netsurf|sleipnir|obigo|mosaic|"
      r"(?:go|ice|up)[\. ]?browser)[-\/ ]?v?([\w\.]+)", r"(links) \(([\w\.]+)"], [N, V]),
    ([r"(cobalt)\/([\w\.]+)"], [N, (V, lambda found: found and re.sub("master.|lts.", "", found,
                                                                      count=1))]),
)

SYSTEMS = _rules(
    ([r"microsoft (windows) (vista|xp)"], [N, V]),
    ([r"(windows) nt 6\.2; (arm)", r"(windows (?:phone(?: os)?|mobile))[\/ ]?([\d\.\w ]*)",
      r"(windows)[\/ ]?([ntce\d\. ]+\w)(?!.+xbox)"], [N, V]),
    ([r"(win(?=3|9|n)|win 9x )([nt\d\.]+)"], [(N, "Windows"), V]),
    ([r"ip[honead]{2,4}\b(?:.*os ([\w]+) like mac|; opera)", r"cfnetwork\/.+darwin"],
     [V, (N, "iOS")]),
    ([r"(mac os x) ?([\w\. ]*)", r"(macintosh|mac_powerpc\b)(?!.+haiku)"],
     [(N, "Mac OS"), V]),
    ([r"droid ([\w\.]+)\b.+(android[- ]x86|harmonyos)"], [V, N]),
    ([r"(android|webos|qnx|bada|rim tablet os|maemo|meego|sailfish)[-\/ ]?([\w\.]*)",
      r"(blackberry)\w*\/([\w\.]*)", r"(tizen|kaios)[\/ ]([\w\.]+)", r"\((series40);"], [N, V]),
    ([r"\(bb(10);"], [V, (N, "BlackBerry")]),
    ([r"(?:symbian ?os|symbos|s60(?=;)|series60)[-\/ ]?([\w\.]*)"], [V, (N, "Symbian")]),
    ([r"mozilla\/[\d\.]+ \((?:mobile|tablet|tv|mobile; [\w ]+); rv:.+ gecko\/([\w\.]+)"],
     [V, (N, "Firefox OS")]),
    ([r"web0s;.+rt(tv)", r"\b(?:hp)?wos(?:browser)?\/([\w\.]+)"], [V, (N, "webOS")]),
    ([r"crkey\/([\d\.]+)"], [V, (N, "Chromecast")]),
    ([r"(cros) [\w]+ ([\w\.]+\w)"], [(N, "Chromium OS"), V]),
    ([r"(nintendo|playstation) ([wids345portablevuch]+)", r"(xbox); +xbox ([^\);]+)",
      r"\b(joli|palm)\b ?(?:os)?\/?([\w\.]*)", r"(mint)[\/\(\) ]?(\w*)",
      r"(mageia|vectorlinux)[; ]",
      r"([kxln]?ubuntu|debian|suse|opensuse|gentoo|arch(?= linux)|slackware|fedora|mandriva|"
      r"centos|pclinuxos|red ?hat|zenwalk|linpus|raspbian|plan 9|minix|risc os|contiki|deepin|"
      r"manjaro|elementary os|sabayon|linspire)(?: gnu\/linux)?(?: enterprise)?(?:[- ]linux)?"
      r"(?:-gnu)?[-\/ ]?(?!chrom|package)([-\w\.]*)",
      r"(hurd|linux) ?([\w\.]*)", r"(gnu) ?([\w\.]*)",
      r"\b([-frentopcghs]{0,5}bsd|dragonfly)[\/ ]?(?!amd|[ix346]{1,2}86)([\w\.]*)",
      r"(haiku) (\w+)"], [N, V]),
    ([r"(sunos) ?([\w\.\d]*)"], [(N, "Solaris"), V]),
    ([r"((?:open)?solaris)[-\/ ]?([\w\.]*)", r"(aix) ((\d)(?=\.|\)| )[\w\.])*",
      r"\b(beos|os\/2|amigaos|morphos|openvms|fuchsia|hp-ux)", r"(unix) ?([\w\.]*)"], [N, V]),
)

# Phones and tablets by maker, then consoles, TVs and wearables, then generic devices.
DEVICES = _rules(
    ([r"\b(sch-i[89]0\d|shw-m380s|sm-[ptx]\w{2,4}|gt-[pn]\d{2,4}|sgh-t8[56]9|nexus 10)"],
     [M, SAMSUNG, TABLET]),
    ([r"\b((?:s[cgp]h|gt|sm)-\w+|galaxy nexus)", r"samsung[- ]([-\w]+)", r"sec-(sgh\w+)"],
     [M, SAMSUNG, MOBILE]),
    ([r"((ipod|iphone)\d+,\d+)"], [M, APPLE, MOBILE]),
    ([r"(ipad\d+,\d+)"], [M, APPLE, TABLET]),
    ([r"\((ip(?:hone|od)[\w ]*);"], [M, APPLE, MOBILE]),
    ([r"\((ipad);[-\w\),; ]+apple", r"applecoremedia\/[\w\.]+ \((ipad)",
      r"\b(ipad)\d\d?,\d\d?[;\]].+ios"], [M, APPLE, TABLET]),
    ([r"(macintosh);"], [M, APPLE]),
    ([r"\b((?:ag[rs][23]?|bah2?|sht?|btv)-a?[lw]\d{2})\b(?!.+d\/s)"], [M, HUAWEI, TABLET]),
    ([r"(?:huawei|honor)([-\w ]+)[;\)]",
      r"\b(nexus 6p|\w{2,4}e?-[atu]?[ln][\dx][012359c][adn]?)\b(?!.+d\/s)"],
     [M, HUAWEI, MOBILE]),
    ([r"\b(poco[\w ]+)(?: bui|\))", r"\b; (\w+) build\/hm\1",
      r"\b(hm[-_ ]?note?[_ ]?(?:\d\w)?) bui",
      r"\b(redmi[\-_ ]?(?:note|k)?[\w_ ]+)(?: bui|\))",
      r"\b(mi[-_ ]?(?:a\d|one|one[_ ]plus|note lte|max|cc)?[_ ]?(?:\d?\w?)[_ ]?(?:plus|se|lite)?)"
      r"(?: bui|\))"], [(M, _spaced), XIAOMI, MOBILE]),
    ([r"\b(mi[-_ ]?(?:pad)(?:[\w_ ]+))(?: bui|\))"], [(M, _spaced), XIAOMI, TABLET]),
    ([r"; (\w+) bui.+ oppo", r"\b(cph[12]\d{3}|p(?:af|c[al]|d\w|e[ar])[mt]\d0|x9007|a101op)\b"],
     [M, (B, "OPPO"), MOBILE]),
    ([r"vivo (\w+)(?: bui|\))", r"\b(v[12]\d{3}\w?[at])(?: bui|;)"], [M, (B, "Vivo"), MOBILE]),
    ([r"\b(rmx[12]\d{3})(?: bui|;|\))"], [M, (B, "Realme"), MOBILE]),
    ([r"\b(milestone|droid(?:[2-4x]| (?:bionic|x2|pro|razr))?:?( 4g)?)\b[\w ]+build\/",
      r"\bmot(?:orola)?[- ](\w*)", r"((?:moto[\w\(\) ]+|xt\d{3,4}|nexus 6)(?= bui|\)))"],
     [M, (B, "Motorola"), MOBILE]),
    ([r"\b(mz60\d|xoom[2 ]{0,2}) build\/"], [M, (B, "Motorola"), TABLET]),
    ([r"((?=lg)?[vl]k\-?\d{3}) bui| 3\.[-\w; ]{10}lg?-([06cv9]{3,4})"], [M, (B, "LG"), TABLET]),
    ([r"(lm(?:-?f100[nv]?|-[\w\.]+)(?= bui|\))|nexus [45])",
      r"\blg[-e;\/ ]+((?!browser|netcast|android tv)\w+)", r"\blg-?([\d\w]+) bui"],
     [M, (B, "LG"), MOBILE]),
    ([r"(ideatab[-\w ]+)", r"lenovo ?(s[56]000[-\w]+|tab(?:[\w ]+)|yt[-\d\w]{6}|tb[-\d\w]{6})"],
     [M, (B, "Lenovo"), TABLET]),
    ([r"(?:maemo|nokia).*(n900|lumia \d+)", r"nokia[-_ ]?([-\w\.]*)"],
     [(M, _spaced), (B, "Nokia"), MOBILE]),
    ([r"(pixel c)\b"], [M, GOOGLE, TABLET]),
    ([r"droid.+; (pixel[\daxl ]{0,6})(?: bui|\))"], [M, GOOGLE, MOBILE]),
    ([r"droid.+ (a?\d[0-2]{2}so|[c-g]\d{4}|so[-gl]\w+|xq-a\w[4-7][12])"
      r"(?= bui|\).+chrome\/(?![1-6]{0,1}\d\.))"], [M, SONY, MOBILE]),
    ([r"sony tablet [ps]", r"\b(?:sony)?sgp\w+(?: bui|\))"], [(M, "Xperia Tablet"), SONY, TABLET]),
    ([r" (kb2005|in20[12]5|be20[12][59])\b", r"(?:one)?(?:plus)? (a\d0\d\d)(?: b|\))"],
     [M, (B, "OnePlus"), MOBILE]),
    ([r"(alexa)webm", r"(kf[a-z]{2}wi)( bui|\))", r"(kf[a-z]+)( bui|\)).+silk\/"],
     [M, AMAZON, TABLET]),
    ([r"((?:sd|kf)[0349hijorstuw]+)( bui|\)).+silk\/"],
     [(M, _prefix("Fire Phone ")), AMAZON, MOBILE]),
    ([r"(playbook);[-\w\),; ]+(rim)"], [M, B, TABLET]),
    ([r"\b((?:bb[a-f]|st[hv])100-\d)", r"\(bb10; (\w+)"], [M, (B, "BlackBerry"), MOBILE]),
    ([r"(?:\b|asus_)(transfo[prime ]{4,10} \w+|eeepc|slider \w+|nexus 7|padfone|p00[cj])"],
     [M, ASUS, TABLET]),
    ([r" (z[bes]6[027][012][km][ls]|zenfone \d\w?)\b"], [M, ASUS, MOBILE]),
    ([r"(nexus 9)"], [M, (B, "HTC"), TABLET]),
    ([r"(htc)[-;_ ]{1,2}([\w ]+(?=\)| bui)|\w+)", r"(zte)[- ]([\w ]+?)(?: bui|\/|\))",
      r"(alcatel|geeksphone|nexian|panasonic|sony(?!-bra))[-_ ]?([-\w]*)"],
     [B, (M, _spaced), MOBILE]),
    ([r"droid.+; ([ab][1-7]-?[0178a]\d\d?)"], [M, (B, "Acer"), TABLET]),
    ([r"droid.+; (m[1-5] note) bui", r"\bmz-([-\w]{2,})"], [M, (B, "Meizu"), MOBILE]),
    ([r"\b(sh-?[altvz]?\d\d[a-ekm]?)"], [M, SHARP, MOBILE]),
    ([r"(blackberry|benq|palm(?=\-)|sonyericsson|acer|asus|dell|meizu|motorola|polytron)"
      r"[-_ ]?([-\w]*)", r"(hp) ([\w ]+\w)", r"(asus)-?(\w+)", r"(microsoft); (lumia[\w ]+)",
      r"(lenovo)[-_ ]?([-\w]+)", r"(jolla)", r"(oppo) ?([\w ]+) bui"], [B, M, MOBILE]),
    ([r"(archos) (gamepad2?)", r"(hp).+(touchpad(?!.+tablet)|tablet)", r"(kindle)\/([\w\.]+)",
      r"(nook)[\w ]+build\/(\w+)", r"(dell) (strea[kpr\d ]*[\dko])",
      r"(le[- ]+pan)[- ]+(\w{1,9}) bui", r"(trinity)[- ]*(t\d{3}) bui",
      r"(gigaset)[- ]+(q\w{1,9}) bui", r"(vodafone) ([\w ]+)(?:\)| bui)"], [B, M, TABLET]),
    ([r"(surface duo)"], [M, MICROSOFT, TABLET]),
    ([r"droid [\d\.]+; (fp\du?)(?: b|\))"], [M, (B, "Fairphone"), MOBILE]),
    ([r"(u304aa)"], [M, (B, "AT&T"), MOBILE]),
    ([r"\bsie-(\w*)"], [M, (B, "Siemens"), MOBILE]),
    ([r"\b(rct\w+) b"], [M, (B, "RCA"), TABLET]),
    ([r"\b(venue[\d ]{2,7}) b"], [M, (B, "Dell"), TABLET]),
    ([r"\b(q(?:mv|ta)\w+) b"], [M, (B, "Verizon"), TABLET]),
    ([r"\b(?:barnes[& ]+noble |bn[rt])([\w\+ ]*) b"], [M, (B, "Barnes & Noble"), TABLET]),
    ([r"\b(tm\d{3}\w+) b"], [M, (B, "NuVision"), TABLET]),
    ([r"\b(k88) b"], [M, (B, "ZTE"), TABLET]),
    ([r"\b(nx\d{3}j) b"], [M, (B, "ZTE"), MOBILE]),
    ([r"\b(gen\d{3}) b.+49h"], [M, (B, "Swiss"), MOBILE]),
    ([r"\b(zur\d{3}) b"], [M, (B, "Swiss"), TABLET]),
    ([r"\b((zeki)?tb.*\b) b"], [M, (B, "Zeki"), TABLET]),
    ([r"\b([yr]\d{2}) b", r"\b(dragon[- ]+touch |dt)(\w{5}) b"],
     [(B, "Dragon Touch"), M, TABLET]),
    ([r"\b(ns-?\w{0,9}) b"], [M, (B, "Insignia"), TABLET]),
    ([r"\b((nxa|next)-?\w{0,9}) b"], [M, (B, "NextBook"), TABLET]),
    ([r"\b(xtreme\_)?(v(1[045]|2[015]|[3469]0|7[05])) b"], [(B, "Voice"), M, MOBILE]),
    ([r"\b(lvtel\-)?(v1[12]) b"], [(B, "LvTel"), M, MOBILE]),
    ([r"\b(ph-1) "], [M, (B, "Essential"), MOBILE]),
    ([r"\b(v(100md|700na|7011|917g).*\b) b"], [M, (B, "Envizen"), TABLET]),
    ([r"\b(trio[-\w\. ]+) b"], [M, (B, "MachSpeed"), TABLET]),
    ([r"\btu_(1491) b"], [M, (B, "Rotor"), TABLET]),
    ([r"(shield[\w ]+) b"], [M, NVIDIA, TABLET]),
    ([r"(sprint) (\w+)"], [B, M, MOBILE]),
    ([r"(kin\.[onetw]{3})"], [(M, lambda found: found and found.replace(".", " ")), MICROSOFT,
                               MOBILE]),
    ([r"droid.+; (cc6666?|et5[16]|mc[239][23]x?|vc8[03]x?)\)"], [M, ZEBRA, TABLET]),
    ([r"droid.+; (ec30|ps20|tc[2-8]\d[kx])\)"], [M, ZEBRA, MOBILE]),
    ([r"(ouya)", r"(nintendo) ([wids3utch]+)"], [B, M, CONSOLE]),
    ([r"droid.+; (shield) bui"], [M, NVIDIA, CONSOLE]),
    ([r"(playstation [345portablevi]+)"], [M, SONY, CONSOLE]),
    ([r"\b(xbox(?: one)?(?!; xbox))[\); ]"], [M, MICROSOFT, CONSOLE]),
    ([r"smart-tv.+(samsung)"], [B, SMARTTV]),
    ([r"hbbtv.+maple;(\d+)"], [(M, _prefix("SmartTV")), SAMSUNG, SMARTTV]),
    ([r"(nux; netcast.+smarttv|lg (netcast\.tv-201\d|android tv))"], [(B, "LG"), SMARTTV]),
    ([r"(apple) ?tv"], [B, (M, "Apple TV"), SMARTTV]),
    ([r"crkey"], [(M, "Chromecast"), GOOGLE, SMARTTV]),
    ([r"droid.+aft(\w)( bui|\))"], [M, AMAZON, SMARTTV]),
    ([r"\(dtv[\);].+(aquos)", r"(aquos-tv[\w ]+)\)"], [M, SHARP, SMARTTV]),
    ([r"(bravia[\w ]+)( bui|\))"], [M, SONY, SMARTTV]),
    ([r"(mitv-\w{5}) bui"], [M, XIAOMI, SMARTTV]),
    ([r"\b(roku)[\dx]*[\)\/]((?:dvp-)?[\d\.]*)",
      r"hbbtv\/\d+\.\d+\.\d+ +\([\w ]*; *(\w[^;]*);([^;]*)"], [(B, _trim), (M, _trim), SMARTTV]),
    ([r"\b(android tv|smart[- ]?tv|opera tv|tv; rv:)\b"], [SMARTTV]),
    ([r"((pebble))app"], [B, M, (T, "wearable")]),
    ([r"droid.+; (glass) \d"], [M, GOOGLE, (T, "wearable")]),
    ([r"droid.+; (wt63?0{2,3})\)"], [M, ZEBRA, (T, "wearable")]),
    ([r"(quest( 2)?)"], [M, (B, "Facebook"), (T, "wearable")]),
    ([r"(tesla)(?: qtcarbrowser|\/[-\w\.]+)"], [B, (T, "embedded")]),
    ([r"droid .+?; ([^;]+?)(?: bui|\) applew).+? mobile safari"], [M, MOBILE]),
    ([r"droid .+?; ([^;]+?)(?: bui|\) applew).+?(?! mobile) safari"], [M, TABLET]),
    ([r"\b((tablet|tab)[;\/]|focus\/\d(?!.+mobile))"], [TABLET]),
    ([r"(phone|mobile(?:[;\/]| [ \w\/\.]*safari)|pda(?=.+windows ce))"], [MOBILE]),
    ([r"(android[-\w\. ]{0,9});.+buil"], [M, (B, "Generic")]),
)
# fmt: on


def _apply(rules: list[Rule], ua: str) -> dict[str, str | None]:
    """ua-parser-js' `rgxMapper`: the first matching pattern's properties."""
    found: dict[str, str | None] = {}
    for patterns, props in rules:
        for pattern in patterns:
            match = pattern.search(ua)
            if match is None:
                continue
            for group, prop in enumerate(props, 1):
                text = match[group] if group <= pattern.groups else None
                if isinstance(prop, str):
                    found[prop] = text or None
                elif isinstance(prop[1], str):
                    found[prop[0]] = prop[1]
                else:
                    found[prop[0]] = prop[1](text)
            return found
    return found


def _major(version: str | None) -> str | None:
    """ua-parser-js' `majorize`: the digits before the first dot ("" when there are none)."""
    if version is None:
        return None
    return re.sub(r"[^\d.]", "", version, flags=re.A).split(".")[0]


UA_FIELDS = ("os_name", "os_version", "device_manufacturer", "device_model", "device_type")


@functools.lru_cache(maxsize=4096)
def _parsed(ua: str) -> tuple[str | None, ...]:
    """(browser, browser's major version, OS, maker, model, device type) of a user agent: the
    same few agents come again and again, and a miss tries a few hundred patterns."""
    if len(ua) > UA_MAX_LENGTH:
        ua = ua.lstrip()[:UA_MAX_LENGTH]
    browser, system, device = (_apply(rules, ua) for rules in (BROWSERS, SYSTEMS, DEVICES))
    return (browser.get(N), _major(browser.get(V)), system.get(N), device.get(B), device.get(M),
            device.get(T))  # fmt: skip


def user_agent_fields(ua: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Every field of `UA_FIELDS`, None where the parser found nothing (JavaScript's
    undefined: the field is left out); `data` is the client hints' `model`, `platformVersion`."""
    browser, major, os_name, vendor, model, kind = _parsed(ua)
    data = data if isinstance(data, Mapping) else {}
    version, hinted = data.get("platformVersion"), data.get("model")
    return {
        "os_name": os_name if os_name is not None else browser,
        "os_version": version if version is not None else major,
        "device_manufacturer": vendor,
        "device_model": next((v for v in (hinted, model, os_name) if v is not None), None),
        "device_type": kind,
    }


def parse_user_agent(ua: Any, data: Any = None) -> dict[str, Any]:
    """Segment's `parseUserAgentProperties(userAgent, userAgentData)`: the fields it finds."""
    if not isinstance(ua, str) or not ua:
        return {}
    return {k: v for k, v in user_agent_fields(ua, data).items() if v is not None}
