// Sample rules for the kizuna crawler (kizuna-crawl). The category of a rule comes from its tag
// or its `category` meta: exploit, injection, or malware (the default).
// These are examples: real deployments load their own rule sets from judge.yara_dir.

rule injected_hidden_iframe : injection
{
    meta:
        category = "injection"
        description = "zero-size or invisible iframe, the classic mass-injection into compromised sites"
    strings:
        $zero = /<iframe[^>]{0,300}width\s*=\s*["']?[01]["']?[^>]{0,300}height\s*=\s*["']?[01]\b/ nocase
        $hidden = /<iframe[^>]{0,300}style\s*=\s*["'][^"']{0,200}(visibility\s*:\s*hidden|display\s*:\s*none)/ nocase
    condition:
        any of them
}

rule injected_packed_eval : injection
{
    meta:
        category = "injection"
        description = "Dean Edwards packer or char-code eval chains typical of injected loaders"
    strings:
        $packer = "eval(function(p,a,c,k,e," ascii
        $charcode = /eval\s*\(\s*String\.fromCharCode\s*\(\s*\d{2,3}(\s*,\s*\d{2,3}){20,}/ ascii
        $unescape = /eval\s*\(\s*unescape\s*\(\s*["'](%[0-9a-fA-F]{2}){30,}/ ascii
    condition:
        any of them
}

rule exploit_kit_plugin_probe : exploit
{
    meta:
        category = "exploit"
        description = "exploit-kit landing page probing plug-in versions before choosing an exploit"
    strings:
        $pd = "PluginDetect" ascii
        $probe = /getVersion\s*\(\s*["'](Java|Flash|AdobeReader|Silverlight)/ ascii
    condition:
        $pd and $probe
}

rule kizuna_test_dropper : malware
{
    meta:
        category = "malware"
        family = "kizuna-test-dropper"
        description = "the harmless PE-like test sample of the crawler's tests and benchmark (MZ + marker)"
    strings:
        $marker = "KIZUNA-TEST-MALWARE-MARKER" ascii
    condition:
        uint16(0) == 0x5A4D and $marker
}
