/*
 * tornado_progress behind nginx with several backends: the key each request is routed by,
 * and one health answer for all backends. Loaded by the njs module (Debian:
 * libnginx-mod-http-js); see deploy/README.md.
 *
 * A job lives in exactly one backend, so every request that names a job must hash to the
 * same one, however the client spelled the jobid. The server reads a jobid the way Tornado
 * parses a request: query fields then form-body fields (urlencoded or multipart), the last
 * `jobid` wins, `+` is a space, %XX is a byte, and a space and a `+` are the same character
 * in an id. key() turns whatever was sent into one canonical spelling of those bytes, so
 * `u1:x`, `u1%3Ax` and `u1%3ax` hash alike, as do `a+b`, `a%20b` and `a%2Bb`.
 */

// Bytes that encodeURIComponent leaves as they are; every other byte is written %XX.
var PLAIN = /^[A-Za-z0-9\-_.!~*'()]$/;
var HEX_PAIR = /^[0-9A-Fa-f]{2}$/;

function byteForm(code) {
    if (code === 0x2B) {
        return '%20';  // a `+` sent as %2B is still a space in an id
    }
    var ch = String.fromCharCode(code);
    if (code < 0x80 && PLAIN.test(ch)) {
        return ch;
    }
    return '%' + (code < 16 ? '0' : '') + code.toString(16).toUpperCase();
}

function charForm(ch) {
    if (ch === '+') {
        return '%20';
    }
    try {
        return encodeURIComponent(ch);  // UTF-8 bytes, upper-case hex, as byteForm writes them
    } catch (e) {
        return ch;  // a lone surrogate: the server refuses such an id anyway
    }
}

// The canonical spelling of a form-encoded name or value.
function encodedForm(raw) {
    var out = '';
    var i = 0;
    while (i < raw.length) {
        var ch = raw[i];
        if (ch === '%' && HEX_PAIR.test(raw.substr(i + 1, 2))) {
            out += byteForm(parseInt(raw.substr(i + 1, 2), 16));
            i += 3;
            continue;
        }
        var code = raw.charCodeAt(i);
        if (code >= 0xD800 && code < 0xDC00 && i + 1 < raw.length) {
            ch = raw.substr(i, 2);  // a character outside the BMP: both halves at once
        }
        out += charForm(ch);
        i += ch.length;
    }
    return out;
}

// The canonical spelling of text sent as it is (a multipart field).
function textForm(text) {
    var out = '';
    var i = 0;
    while (i < text.length) {
        var code = text.charCodeAt(i);
        var width = code >= 0xD800 && code < 0xDC00 && i + 1 < text.length ? 2 : 1;
        var ch = text.substr(i, width);
        out += ch === '%' ? '%25' : charForm(ch);
        i += width;
    }
    return out;
}

// The jobids of a query string or urlencoded body, in order, as canonical spellings.
function formJobids(text) {
    var found = [];
    var fields = text.split('&');
    for (var i = 0; i < fields.length; i++) {
        var field = fields[i];
        if (field === '') {
            continue;
        }
        var eq = field.indexOf('=');
        var name = eq < 0 ? field : field.substring(0, eq);
        if (encodedForm(name) === 'jobid') {
            found.push(eq < 0 ? '' : encodedForm(field.substring(eq + 1)));
        }
    }
    return found;
}

function multipartBoundary(contentType) {
    var match = /;\s*boundary=("([^"]+)"|[^;\s]+)/i.exec(contentType);
    return match ? (match[2] || match[1]) : null;
}

// The jobids of a multipart/form-data body (what `curl -F jobid=...` sends).
function multipartJobids(body, boundary) {
    var found = [];
    var parts = body.split('--' + boundary);
    for (var i = 1; i < parts.length; i++) {
        var part = parts[i];
        var headEnd = part.indexOf('\r\n\r\n');
        if (headEnd < 0) {
            continue;
        }
        var head = part.substring(0, headEnd);
        var disposition = /content-disposition:\s*form-data;([^\r\n]*)/i.exec(head);
        if (!disposition || /filename\*?=/i.test(disposition[1])) {
            continue;
        }
        var name = /(^|;)\s*name="?([^";]*)"?/i.exec(disposition[1]);
        if (name && name[2] === 'jobid') {
            var value = part.substring(headEnd + 4);
            found.push(textForm(value.replace(/\r\n$/, '')));
        }
    }
    return found;
}

function bodyJobids(r) {
    var contentType = r.headersIn['Content-Type'] || '';
    var isForm = contentType.indexOf('application/x-www-form-urlencoded') === 0;
    var isMultipart = contentType.indexOf('multipart/form-data') === 0;
    if ((!isForm && !isMultipart) || (isForm && r.headersIn['Content-Encoding'])) {
        return [];  // Tornado reads fields only from these bodies, and no compressed form
    }
    var body;
    try {
        body = r.requestText;  // read already: nginx evaluates the hash key after the body
    } catch (e) {
        return [];
    }
    if (!body) {
        return [];
    }
    if (isForm) {
        return formJobids(body);
    }
    var boundary = multipartBoundary(contentType);
    return boundary ? multipartJobids(body, boundary) : [];
}

/*
 * The routing key: the canonical jobid, or, for a request that names no job, the request's
 * own random id. That spreads such requests (health, static files) over the backends, and a
 * `create` without a jobid is sent, as X-Progress-New-Jobid, the id to choose: the one it is
 * routed by, so that its later requests find it.
 */
function key(r) {
    var ids = formJobids(r.variables.args || '').concat(bodyJobids(r));
    var last = ids.length ? ids[ids.length - 1] : '';
    return last === '' ? r.variables.request_id : last;
}

// One health answer for every backend, each asked through its own location.
function backends(r) {
    var names = (r.variables.progress_backends || '').split(' ').filter(function (n) {
        return n !== '';
    });
    var asks = names.map(function (name, index) {
        return r.subrequest('/progress/backends/' + (index + 1) + '/health')
            .then(function (reply) {
                var answer = {backend: index + 1, address: name, status: 'down', error: null};
                if (reply.status !== 200) {
                    answer.error = 'answered HTTP ' + reply.status;
                    return answer;
                }
                try {
                    var health = JSON.parse(reply.responseText);
                    Object.keys(health).forEach(function (field) { answer[field] = health[field]; });
                } catch (e) {
                    answer.error = 'answered something that is not JSON';
                }
                return answer;
            }, function (e) {
                return {backend: index + 1, address: name, status: 'down', error: String(e)};
            });
    });
    Promise.all(asks).then(function (answers) {
        var total = {status: 'ok', backends: answers, jobs: 0, workers: 0};
        answers.forEach(function (answer) {
            if (answer.status !== 'ok' && total.status !== 'down') {
                total.status = answer.status === 'down' ? 'down' : 'degraded';
            }
            total.jobs += answer.jobs || 0;
            total.workers += answer.workers || 0;
        });
        r.headersOut['Content-Type'] = 'application/json';
        r.headersOut['Cache-Control'] = 'no-store';
        r.return(200, JSON.stringify(total) + '\n');
    });
}

export default {key, backends};
