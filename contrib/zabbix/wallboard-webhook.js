// wallboard: the script of a Zabbix "Webhook" media type (Zabbix 5.4 and later).
// Posts the media type's parameters, minus URL and Token, as one JSON object to the
// hub's POST /zabbix (docs/integrations.md, "Zabbix"). Zabbix runs it in Duktape (ES5).
var params = JSON.parse(value);
var url = params.URL;
var token = params.Token;
delete params.URL;
delete params.Token;
if (!url || url.charAt(0) === '{') {
    throw 'wallboard: the URL parameter is empty: set it to http://HUB:8766/zabbix';
}
// Zabbix before 7.0 has no {EVENT.TIMESTAMP} / {EVENT.RECOVERY.TIMESTAMP} /
// {EVENT.UPDATE.TIMESTAMP}: derive them from the *_date and *_time parameters, which are
// in the Zabbix server's local time zone, the zone this script runs in.
function unixTime(date, time) {
    var d = /^(\d{4})\.(\d{2})\.(\d{2})$/.exec(date || '');
    var t = /^(\d{2}):(\d{2}):(\d{2})$/.exec(time || '');
    if (!d || !t) {
        return null;
    }
    return String(Math.round(new Date(+d[1], +d[2] - 1, +d[3], +t[1], +t[2], +t[3]).getTime() / 1000));
}
var stamps = [['event_timestamp', 'event_date', 'event_time'],
              ['event_recovery_timestamp', 'event_recovery_date', 'event_recovery_time'],
              ['event_update_timestamp', 'event_update_date', 'event_update_time']];
for (var i = 0; i < stamps.length; i++) {
    var s = stamps[i];
    if (!/^\d+$/.test(params[s[0]] || '')) {
        var ts = unixTime(params[s[1]], params[s[2]]);
        if (ts !== null) {
            params[s[0]] = ts;
        }
    }
    delete params[s[1]];
    delete params[s[2]];
}
var req = new HttpRequest();
req.addHeader('Content-Type: application/json');
req.addHeader('X-Wallboard-Client: zabbix');
if (token && token.charAt(0) !== '{') {
    req.addHeader('Authorization: Bearer ' + token);
}
var answer = req.post(url, JSON.stringify(params));
var status = req.getStatus();
if (status !== 200) {
    Zabbix.log(3, '[wallboard webhook] ' + url + ' answered HTTP ' + status + ': ' + answer);
    throw 'wallboard answered HTTP ' + status + ': ' + answer;
}
return 'OK';
