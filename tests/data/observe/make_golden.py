#!/usr/bin/env python3
"""Golden outputs for `crates/env/src/observe.rs`, computed with WebShop's own observation code.

The functions `tag_visible`, `convert_html_to_text` and `get_available_actions` below are
copied from princeton-nlp/WebShop `web_agent_site/envs/web_agent_text_env.py` (only `self`
replaced by arguments). Run with the versions WebShop pins, on CPython 3.11:

    python3 -m venv /tmp/bs4venv
    /tmp/bs4venv/bin/pip install beautifulsoup4==4.11.1 soupsieve==2.3.2.post1 flask==2.1.2 \
        werkzeug==2.1.2 jinja2==3.1.2 markupsafe==2.1.1
    cd tests/data/observe
    /tmp/bs4venv/bin/python make_golden.py render /path/to/WebShop   # ws_*.html (needs flask)
    /tmp/bs4venv/bin/python make_golden.py golden                    # *.txt, *.json, corpus.json
    /tmp/bs4venv/bin/python make_golden.py entities                  # ENTITY_DATA for observe.rs
    /tmp/bs4venv/bin/python make_golden.py corpus 20000 7 /tmp/big.json  # a bigger fuzz corpus

soupsieve (bs4's CSS engine, unpinned by WebShop) is pinned to the release of the same month as
bs4 4.11.1; recent soupsieve (4.1.3 checked) no longer selects radios inside `<template>`.

`render` re-renders WebShop's templates exactly as its text environment (SimServer) does:
inside a Flask app whose routes are all registered on '/', so `url_for` yields '/?…' URLs.
`golden` writes, for every `NAME.html` here (inputs `NAME.meta.json`: url, visited_asins):
`NAME.text.txt`, `NAME.text_rich.txt`, `NAME.clickables.json` (get_available_actions),
`NAME.instruction.txt`; and `corpus.json`: hand-written tricky pages plus seeded random ones,
each with the same outputs (or `error` where bs4/html.parser raises).
"""

import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# --------------------------------------------------------------------------------------------
# WebShop's observation code (web_agent_text_env.py), verbatim apart from `self`.
# --------------------------------------------------------------------------------------------


def _parse_html(html):
    from bs4 import BeautifulSoup

    return BeautifulSoup(html, 'html.parser')


def tag_visible(element):
    from bs4.element import Comment

    ignore = {'style', 'script', 'head', 'title', 'meta', '[document]'}
    return (
        element.parent.name not in ignore and not isinstance(element, Comment)
    )


def convert_html_to_text(html, simple, url, asins):
    texts = _parse_html(html).findAll(text=True)
    visible_texts = filter(tag_visible, texts)
    if simple:
        return ' [SEP] '.join(t.strip() for t in visible_texts if t != '\n')
    else:
        observation = ''
        for t in visible_texts:
            if t == '\n': continue
            if t.parent.name == 'button':  # button
                processed_t = f'[button] {t} [button_]'
            elif t.parent.name == 'label':  # options
                if f'"{t}"' in url:
                    processed_t = f'  [clicked button] {t} [clicked button_]'
                    observation = f'You have clicked {t}.\n' + observation
                else:
                    processed_t = f'  [button] {t} [button_]'
            elif t.parent.get('class') == ["product-link"]:  # product asins
                if f'{t}' in asins:
                    processed_t = f'\n[clicked button] {t} [clicked button_]'
                else:
                    processed_t = f'\n[button] {t} [button_]'
            else:  # regular, unclickable text
                processed_t = str(t)
            observation += processed_t + '\n'
        return observation


def get_available_actions(html):
    html_obj = _parse_html(html)
    search_bar = html_obj.find(id='search_input')
    has_search_bar = True if search_bar is not None else False
    buttons = html_obj.find_all(class_='btn')
    product_links = html_obj.find_all(class_='product-link')
    buying_options = html_obj.select('input[type="radio"]')
    text_to_clickable = {
        f'{b.get_text()}'.lower(): b
        for b in buttons + product_links
    }
    for opt in buying_options:
        opt_value = opt.get('value')
        text_to_clickable[f'{opt_value}'] = opt
    return dict(
        has_search_bar=has_search_bar,
        clickables=list(text_to_clickable.keys()),
    )


def instruction(html):
    """`get_instruction_text` (`find(id='instruction-text').h4.text`) without the
    'Instruction:' prefix; the whole element's text if it has no h4; '' if absent."""
    root = _parse_html(html).find(id='instruction-text')
    if root is None:
        return ''
    h4 = root.h4
    t = (h4 if h4 is not None else root).text.strip()
    if t.startswith('Instruction:'):
        t = t[len('Instruction:'):]
    return t.strip()


def outputs(html, url='', asins=()):
    try:
        out = dict(
            text=convert_html_to_text(html, True, url, set(asins)),
            text_rich=convert_html_to_text(html, False, url, set(asins)),
            instruction=instruction(html),
            **get_available_actions(html),
        )
        json.dumps(out).encode('utf-8')
        for v in [out['text'], out['text_rich'], out['instruction'], *out['clickables']]:
            v.encode('utf-8')  # lone surrogates (from &#xD800;) cannot be compared
        return out
    except Exception as e:  # html.parser raises on e.g. `<![foo[`
        return dict(error=f'{type(e).__name__}: {e}')


# --------------------------------------------------------------------------------------------
# Rendering WebShop's templates like SimServer does.
# --------------------------------------------------------------------------------------------

INSTR = 'i need a sulfate free hair growth serum, and price lower than 50.00 dollars'
BASE = 'http://127.0.0.1:3000'
SID = 'fixed_0'


def render(webshop):
    from flask import Flask, render_template_string

    app = Flask(__name__)
    for name in ['index', 'search_results', 'item_page', 'item_sub_page', 'done']:
        app.add_url_rule('/', name, lambda **kw: '', methods=['GET', 'POST'])

    def template(name):
        return subprocess.run(
            ['git', '-C', webshop, 'show', f'HEAD:web_agent_site/templates/{name}'],
            check=True, capture_output=True, text=True).stdout

    titles = [
        'Hair Growth Serum with Biotin Sulfate Free for Thinning Hair',
        'Rosemary Oil & Biotin <Hair> Serum "Extra Strength"',
        "Men's Café Shampoo™ — 2 Pack",
        'Argan Oil Hair Serum, 3.4 fl oz',
        'Scalp Serum  with   spaces',
        'Vitamin E &amp; Keratin Serum',
        'Sérum capillaire à la caféine',
        'Hair Serum 100ml / 3.38oz',
        'Leave-in Treatment (Sulfate-Free)',
        'Tea Tree Hair Growth Serum',
    ]
    products = [
        dict(asin=f'B0TEST{i:04d}', Title=t, Price=['$18.95', '$21.99 to $26.99'][i % 2],
             MainImage=f'https://example.com/img/{i}.jpg')
        for i, t in zip(range(6, 70, 6), titles)
    ]
    product = dict(
        asin='B0TEST0006', Title=titles[0], Price='$18.95', Rating='N.A.',
        MainImage='https://example.com/img/6.jpg',
        options={'color': ['black | red', 'white', 'navy blue'], 'size': ['8', '9', '10', '11']},
        option_to_image={'white': 'https://example.com/img/6w.jpg'},
        Description='A serum.\n  Free of sulfates & parabens <b>really</b>.',
        BulletPoints=['Sulfate free', 'Biotin & keratin', ' Made in USA '],
        Reviews=[], Attributes=['sulfate free', 'hair growth'],
        category='beauty', query='hair serum', product_category='Beauty › Hair Care',
    )
    dupes = dict(product, asin='B0TEST0012',
                 options={'size': ['8', '9', '10'], 'width': ['8', 'wide'], 'pack': ['1', '9']})
    kw = ['hair', 'serum']
    pages = {}
    with app.app_context(), app.test_request_context():
        R = render_template_string
        pages['ws_search'] = (R(template('search_page.html'), session_id=SID,
                                instruction_text=INSTR), f'{BASE}/{SID}', [])
        for page in (1, 2):
            pages[f'ws_results_p{page}'] = (
                R(template('results_page.html'), session_id=SID,
                  products=products if page == 1 else products[:3], keywords=kw, page=page,
                  total=23, instruction_text=INSTR),
                f'{BASE}/search_results/{SID}/hair+serum/{page}', ['B0TEST0012'])
        for name, prod, opts in [('ws_item', product, {}),
                                 ('ws_item_clicked', product, {'color': 'white', 'size': '10'}),
                                 ('ws_item_dupes', dupes, {'size': '8'})]:
            pages[name] = (
                R(template('item_page.html'), session_id=SID, product_info=prod, keywords=kw,
                  page=1, asin=prod['asin'], options=opts, instruction_text=INSTR,
                  show_attrs=name == 'ws_item'),
                f'{BASE}/item_page/{SID}/{prod["asin"]}/hair+serum/1/{json.dumps(opts)}', [])
        for name, tpl in [('ws_description', 'description_page.html'),
                          ('ws_features', 'features_page.html'),
                          ('ws_reviews', 'review_page.html'),
                          ('ws_attributes', 'attributes_page.html')]:
            sub = tpl.split('_')[0].capitalize()
            opts = {'color': 'white'}
            pages[name] = (
                R(template(tpl), session_id=SID, product_info=product, keywords=kw, page=1,
                  asin=product['asin'], options=opts, instruction_text=INSTR),
                f'{BASE}/item_sub_page/{SID}/B0TEST0006/hair+serum/1/{sub}/{opts}', [])
        goal = dict(asin='B0TEST0006', goal_options=['white'], attributes=['sulfate free'],
                    price_upper=50.0, instruction_text=INSTR, category='beauty',
                    product_category='Beauty › Hair Care', query='hair serum')
        pages['ws_done'] = (
            R(template('done_page.html'), session_id=SID, reward=1.0, asin='B0TEST0006',
              options={'color': 'white'}, reward_info=None, goal_attrs=None,
              purchased_attrs=None, goal=goal, mturk_code=None, query=None, category=None,
              product_category=None),
            f"{BASE}/done/{SID}/B0TEST0006/{{'color': 'white'}}", [])
    for name, (html, url, asins) in pages.items():
        with open(os.path.join(HERE, name + '.html'), 'w', encoding='utf-8', newline='') as f:
            f.write(html)
        with open(os.path.join(HERE, name + '.meta.json'), 'w', encoding='utf-8') as f:
            json.dump(dict(url=url, visited_asins=asins), f, indent=1, ensure_ascii=False)
            f.write('\n')


# --------------------------------------------------------------------------------------------
# Tricky inputs.
# --------------------------------------------------------------------------------------------

HANDWRITTEN = [
    # (html, url, visited asins)
    ('<p>a &amp; b &lt; Prev &gt; &quot;q&quot; &#39;s &#x41;&#66;&#147; &nbsp;x&#0;</p>', '', []),
    ('<p>&amp &AMP; &ampx; &notit; &notin; &foo; &#150;&#129;&#x110000;&#12ab; &a-b.c</p>', '', []),
    ('<p>x &#; y &#; z <b>q</b></p>', '', []),
    ('<p>&#; only one <b>bad</b> charref</p>', '', []),
    ('<div><p>nested <b>bold <i>italic</i></b> tail</p>\n  \n<p> </p><p>\t</p></div>', '', []),
    ('<div>a<!-- comment <p>x</p> -->b<!---->c<!-->d--><!x>e<?pi x?>f</div>', '', []),
    ('<head><title>T</title><style>p{}</style><script>var a="<p>x</p>";</script>'
     '<meta charset=utf-8><div>in head</div></head><body>body</body>', '', []),
    ('<script>a</b>b</script >c<style>x</ſtyle>y</style>z<script>never closed', '', []),
    ('<p>line<br>break<br/>again<br />end</p><p><br>a<br/>b</p>c', '', []),
    ('<div class="btn">Go</div><button class="btn">go</button><a class="btn" href="/x">GO</a>'
     '<input type="radio" value="go"><input type="radio" value="Go">', '', []),
    ('<button class="btn">\n  Buy Now\n</button><button class="btn"> <b>Deep</b> <i>Text</i></button>'
     '<button class="btn"></button><input class="btn" value="x">', '', []),
    ('<input type=RADIO value=a><input type="Radio" value="b" checked><input type=radio>'
     '<input type="radio" value><input type="checkbox" value="c">', '', []),
    ('<a class="product-link" href="/i/1">B0A</a><a class=" product-link " href="/i/2">B0B</a>'
     '<a class="product-link x" href="/i/3">B0C</a><span class="product-link">B0A</span>',
     '', ['B0A', 'B0C']),
    ('<label for=r1>white</label><label>black | red</label><label>navy</label>',
     '/item_page/s/A/k/1/{"color": "white", "size": "navy"}', []),
    ('<div id="instruction-text"><h4>Instruction:<br>find &amp; buy <b>it</b></h4><h4>no</h4></div>',
     '', []),
    ('<div id="instruction-text">Instruction: no h4 here</div>', '', []),
    ('<p>unclosed <b>bold <i>ital', '', []),
    ('<p>truncated <a href="x', '', []),
    ('<p>truncated <a href="x">link</', '', []),
    ('<p>a</p  x>b</>c</ >d</ p>e</P>f', '', []),
    ('<P CLASS="btn">Upper</P><DIV Id="search_input"></DIV>', '', []),
    ('<a x="1"<b>t</a><p\x00>z<a x== \'y>q</a><a x=\'1\'/y>t</a><a x= \'u>v</a>', '', []),
    ('<p>x<', '', []), ('<p>x</p', '', []), ('<p>x<!--c', '', []), ('<p>&a', '', []),
    ('<p>&#65', '', []), ('<p>&amp', '', []), ('&', '', []), ('<', '', []), ('', '', []),
    ('   ', '', []), ('plain text only', '', []), ('\n', '', []),
    ('<!DOCTYPE html><html><body><!doctype x y>t<![CDATA[c<d>]]><![if x]>y<![endif]></body>',
     '', []),
    ('<pre>\n\n</pre><pre>  keep  </pre><textarea>\n</textarea><p>\n\n</p>', '', []),
    ('<div>café 中文 \u00a0nbsp\u3000ideo\u2028ls <b>\u00a0</b> ünï</div>'
     '<button class="btn">ÜBER İstanbul ΣΑΣ</button>', '', []),
    ('<form action="/search?q=1&amp;p=2"><input id="search_input" type="text" name="q">'
     '<button class="btn" type="submit">Search</button></form>', '', []),
    ('<form action="/f"><input type="text" name="City" placeholder="city">'
     '<select name="s" id="sel"><option value="A">a</option><option selected>B b</option>'
     '</select><textarea name="Note"></textarea></form>', '', []),
    ('<template><button class="btn">tpl</button>t</template><ruby>漢<rt>kan</rt></ruby>'
     '<button class="btn">x<script>s</script><style>y</style>z</button>', '', []),
    ('<div class="btn"><div class="btn">inner</div>outer</div>', '', []),
    ('<h4>p1</h5><h4>p2</h6><div>d</div></h4>after', '', []),
    ('<label>a</label><label> a </label><label>"q"</label>', '{"a"} {" a "} {""q""}', []),
    ('<input type="radio" value="8" name="size"><input type="radio" value="8" name="width">'
     '<input type="radio" value="9" data-url="/u9?x=1&amp;y=2">', '', []),
    ('<button class="btn">Back to Search</button><button class="btn">back to search</button>'
     '<a class="product-link">back to search</a>', '', []),
]

TAGS = ['p', 'div', 'span', 'button', 'label', 'a', 'h4', 'h2', 'li', 'ul', 'form', 'input',
        'br', 'pre', 'textarea', 'script', 'style', 'title', 'head', 'meta', 'template', 'rt',
        'select', 'option', 'b', 'i', 'img', 'P', 'DIV', 'Button', 'html', 'body', 'x:y',
        'a-b', 'SCRİPT', 'ſtyle', 'label\x0b', 'İnput']
WORDS = ['black', 'white', 'Buy Now', 'b0test0006', 'B0TEST0006', '< Prev', 'Next >', 'café',
         '中文', 'a', 'search', 'x y', '8', 'navy blue', 'Instruction:', 'ΣΑΣ', 'İ']
TEXT_BITS = [' ', '  ', '\n', '\n  ', '\t', '\r\n', '\u00a0', '\u3000', '\x0b', '\x1c', '&amp;',
             '&lt;', '&gt;', '&nbsp;', '&foo;', '&#65;', '&#x41;', '&#147;', '&#0;', '&#;',
             '&#x;', '&amp-', '&notit;', '&copy', '&', '<', '>', '"', "'", '=', '/', 'é', '\u2028']
ATTR_NAMES = ['class', 'id', 'type', 'value', 'href', 'data-url', 'checked', 'selected', 'name',
              'action', 'CLASS', 'Type', 'onclick', 'placeholder', 'x', 'chec\u212aed', 'İd',
              'clasſ', '"q', "'", '=x']
ATTR_VALUES = ['btn', 'btn btn-primary', 'product-link', ' product-link ', 'product-link x',
               'x btn', 'search_input', 'instruction-text', 'radio', 'RADIO', 'text', 'submit',
               'white', '8', 'a&amp;b', 'a&b', '&notit;', '/item?x=1&amp;y=2', '', 'a b',
               "window.location.href='/u';", 'B0TEST0006']
SPECIALS = ['<!-- c -->', '<!---->', '<!-->', '<!x>', '<?pi?>', '<![CDATA[cd]]>', '<![if x]>',
            '<!DOCTYPE html>', '</>', '</ p>', '</p x>', '</b>', '</div>', '<br/>', '<div/>',
            '<input/>', '</br>', '</input>', '< p>', '<3', '<<p>>', '<!doctype>', '<!--->',
            '<!-- a -- >', '<![cdata[x]>]]>', '<![endif]>', '<![ if]>', '<![temp x ]  ]  >',
            '&#xZ', '&#12ab;', '&#99999999999;', '&#x110000;', '&#128;', '&#141;', '&#13;',
            '<a"b>', '<p<b>', '<a\u3000class=btn>', '<a\x0cclass=btn>', '<a class=btn\x0b>',
            '</sCrIpT>', '<script/>', '<style/>', '</textarea>', '<![foo[x]]>']


def rand_attr(r):
    name = r.choice(ATTR_NAMES)
    value = r.choice(ATTR_VALUES)
    form = r.randrange(9)
    if form == 0:
        return f' {name}'
    if form == 1:
        return f' {name}={value.replace(" ", "")}'
    if form == 2:
        return f" {name}='{value}'"
    if form == 3:
        return f' {name} = "{value}"'
    if form == 4:
        return f' {name}=="{value}"'
    if form == 5:
        return f' {name}="{value}'  # unterminated
    if form == 6:
        return f'/{name}="{value}"'
    return f' {name}="{value}"'


def rand_doc(r, depth=0):
    out = []
    for _ in range(r.randrange(1, 7)):
        k = r.randrange(10)
        if k < 3 or depth > 3:
            out.append(r.choice(WORDS) if r.random() < 0.6 else r.choice(TEXT_BITS))
        elif k < 8:
            tag = r.choice(TAGS)
            attrs = ''.join(rand_attr(r) for _ in range(r.randrange(4)))
            close = r.random()
            if close < 0.1:
                out.append(f'<{tag}{attrs}/>')
                continue
            out.append(f'<{tag}{attrs}>')
            if tag.lower() in ('script', 'style'):
                out.append(r.choice(['x<p>y</p>', 'var a = "</b>";', '']))
            else:
                out.append(rand_doc(r, depth + 1))
            if close < 0.8:
                out.append(f'</{tag}>')
            elif close < 0.9:
                out.append(f'</{r.choice(TAGS)}>')
        else:
            out.append(r.choice(SPECIALS))
    doc = ''.join(out)
    if depth == 0 and r.random() < 0.15:
        doc = doc[:r.randrange(len(doc) + 1)]
    return doc


def corpus(n_random, seed=20240611, handwritten=True):
    r = random.Random(seed)
    cases = [(h, u, a) for h, u, a in HANDWRITTEN] if handwritten else []
    for _ in range(n_random):
        doc = rand_doc(r)
        words = [w for w in WORDS if r.random() < 0.2]
        url = '/item_page/s/A/k/1/' + json.dumps({f'k{i}': w for i, w in enumerate(words)})
        cases.append((doc, url, [w for w in WORDS if r.random() < 0.2]))
    out = []
    for html, url, asins in cases:
        case = dict(html=html, url=url, visited_asins=asins)
        case.update(outputs(html, url, asins))
        out.append(case)
    return out


def golden(n_random):
    for fn in sorted(os.listdir(HERE)):
        if not fn.endswith('.html'):
            continue
        name = fn[:-5]
        with open(os.path.join(HERE, fn), encoding='utf-8', newline='') as f:
            html = f.read()
        meta = dict(url='', visited_asins=[])
        mp = os.path.join(HERE, name + '.meta.json')
        if os.path.exists(mp):
            with open(mp, encoding='utf-8') as f:
                meta.update(json.load(f))
        out = outputs(html, meta['url'], meta['visited_asins'])
        assert 'error' not in out, (fn, out)
        for key, ext in [('text', 'text.txt'), ('text_rich', 'text_rich.txt'),
                         ('instruction', 'instruction.txt')]:
            with open(os.path.join(HERE, f'{name}.{ext}'), 'w', encoding='utf-8',
                      newline='') as f:
                f.write(out[key])
        with open(os.path.join(HERE, f'{name}.clickables.json'), 'w', encoding='utf-8') as f:
            json.dump(dict(has_search_bar=out['has_search_bar'], clickables=out['clickables']),
                      f, indent=1, ensure_ascii=False)
            f.write('\n')
    with open(os.path.join(HERE, 'corpus.json'), 'w', encoding='utf-8') as f:
        json.dump(corpus(n_random), f, indent=0, ensure_ascii=False)
        f.write('\n')


def entities():
    """The ENTITY_DATA string of observe.rs, from html.entities.html5 (bs4's source)."""
    from html.entities import html5

    names = {}
    for k, v in html5.items():
        names.setdefault(k.rstrip(';'), {})[k.endswith(';')] = v
    parts = []
    for n in sorted(names):
        d = names[n]
        v = d.get(True, d.get(False))
        parts.append(n + ':' + ','.join('%x' % ord(c) for c in v) + ('!' if False in d else ''))
    print(' '.join(parts))


if __name__ == '__main__':
    cmd = sys.argv[1] if len(sys.argv) > 1 else 'golden'
    if cmd == 'render':
        render(sys.argv[2])
    elif cmd == 'golden':
        golden(int(sys.argv[2]) if len(sys.argv) > 2 else 500)
    elif cmd == 'entities':
        entities()
    elif cmd == 'corpus':
        with open(sys.argv[4], 'w', encoding='utf-8') as f:
            json.dump(corpus(int(sys.argv[2]), int(sys.argv[3]), False), f, ensure_ascii=False)
    else:
        sys.exit(__doc__)
