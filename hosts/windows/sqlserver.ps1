# Rotation host script for SQL Server: the contract is docs/host-contract.md.
# The SSM agent runs it as SYSTEM; it administers SQL Server with Windows authentication, or as
# the master secret's SQL Server login with alternating users.
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
Set-StrictMode -Version 2.0

function Write-RotatorError([string]$Message) {
    $clean = ($Message -replace '[\x00-\x1f\x7f]', ' ')
    if ($clean.Length -gt 400) { $clean = $clean.Substring(0, 400) }
    [Console]::Error.WriteLine('rotator: ' + $clean)
}

function Get-FirstLine([string]$Text) {
    if ($null -eq $Text) { return '' }
    foreach ($line in ($Text -split "`r?`n")) {
        if ($line.Trim().Length -gt 0) { return $line.Trim() }
    }
    return ''
}

# Anything unforeseen still ends with an explicit exit code and one line, never a password.
trap {
    Write-RotatorError ('unexpected error: ' + $_.Exception.GetType().FullName)
    exit 6
}

# ---- parameters (exported by the agent as SSM_<Name>) ----------------------------------
$action = [string]$env:SSM_Action
$secretId = [string]$env:SSM_SecretId
$versionId = [string]$env:SSM_VersionId
$pinnedLogin = [string]$env:SSM_Login

function Test-Parameter([string]$Value, [string]$Pattern) {
    # .NET's '$' also matches before a final newline: refuse line breaks outright.
    if ($Value.IndexOfAny([char[]]"`r`n") -ge 0) { return $false }
    return [regex]::IsMatch($Value, $Pattern, [System.Text.RegularExpressions.RegexOptions]::CultureInvariant)
}

$reAction = '^(set|verify)$'
$reSecretId = '^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$'
$reVersionId = '^[A-Za-z0-9-]{32,64}$'
if (-not (Test-Parameter $action $reAction)) {
    Write-RotatorError "parameter Action is missing or does not match $reAction"
    exit 2
}
# A secret's complete ARN, with the six characters Secrets Manager adds to its name: a name can be
# given again to a new secret once the old one is deleted, that suffix never.
$reCompleteSecretArn = '^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}$'
if (-not (Test-Parameter $secretId $reSecretId)) {
    Write-RotatorError "parameter SecretId is missing or does not match $reSecretId"
    exit 2
}
if (-not (Test-Parameter $versionId $reVersionId)) {
    Write-RotatorError "parameter VersionId is missing or does not match $reVersionId"
    exit 2
}
# A login name, or tag:RotatorLogin in the shared (fleet) layout, whose documents serve many secrets:
# there the secret's own tag names the login (Read-LoginTag).
$reLogin = '^([A-Za-z0-9_.@+=-]{0,128}|tag:RotatorLogin)$'
if (-not (Test-Parameter $pinnedLogin $reLogin)) {
    Write-RotatorError "parameter Login does not match $reLogin"
    exit 2
}
$region = ($secretId -split ':')[3]

# ---- the secret version ------------------------------------------------------------------
# Whether a JSON text has an object with two members of one name: 'duplicate', 'ok', or 'malformed'
# when it is not JSON this scanner can follow. Names are compared after their escapes are decoded
# and ignoring case, as PowerShell looks a property up: ConvertFrom-Json keeps one of two such members
# (which one differs between Windows PowerShell 5.1 and PowerShell 7, and from what python3 reads on
# Linux), so a secret must never hold two.
function Test-JsonMemberNames([string]$Json) {
    $objects = New-Object System.Collections.Stack
    $expectName = $false
    $i = 0
    $length = $Json.Length
    while ($i -lt $length) {
        $code = [int]$Json[$i]
        if ($code -eq 34) {
            $text = New-Object System.Text.StringBuilder
            $i++
            while ($true) {
                if ($i -ge $length) { return 'malformed' }
                $code = [int]$Json[$i]
                if ($code -eq 34) { break }
                if ($code -eq 92) {
                    $i++
                    if ($i -ge $length) { return 'malformed' }
                    $escape = [int]$Json[$i]
                    if ($escape -eq 117) {
                        if ($i + 4 -ge $length) { return 'malformed' }
                        $hex = $Json.Substring($i + 1, 4)
                        if ($hex -notmatch '^[0-9A-Fa-f]{4}$') { return 'malformed' }
                        [void]$text.Append([char][Convert]::ToInt32($hex, 16))
                        $i += 4
                    } elseif ($escape -eq 98) { [void]$text.Append([char]8)
                    } elseif ($escape -eq 102) { [void]$text.Append([char]12)
                    } elseif ($escape -eq 110) { [void]$text.Append([char]10)
                    } elseif ($escape -eq 114) { [void]$text.Append([char]13)
                    } elseif ($escape -eq 116) { [void]$text.Append([char]9)
                    } elseif ($escape -eq 34 -or $escape -eq 92 -or $escape -eq 47) { [void]$text.Append([char]$escape)
                    } else { return 'malformed' }
                } else {
                    [void]$text.Append([char]$code)
                }
                $i++
            }
            if ($expectName) {
                if (-not $objects.Peek().Add($text.ToString())) { return 'duplicate' }
                $expectName = $false
            }
        } elseif ($code -eq 123) {
            $objects.Push((New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)))
            $expectName = $true
        } elseif ($code -eq 91) {
            $objects.Push($null)
            $expectName = $false
        } elseif ($code -eq 125 -or $code -eq 93) {
            if ($objects.Count -eq 0) { return 'malformed' }
            [void]$objects.Pop()
            $expectName = $false
        } elseif ($code -eq 44) {
            if ($objects.Count -eq 0) { return 'malformed' }
            $expectName = ($null -ne $objects.Peek())
        }
        $i++
    }
    if ($objects.Count -ne 0) { return 'malformed' }
    return 'ok'
}

# The value of the secret's RotatorLogin tag, or '' when it has none.
function Read-LoginTag([string]$Id) {
    $secretRegion = ($Id -split ':')[3]
    if ($null -ne (Get-Command -Name 'Get-SECSecret' -ErrorAction SilentlyContinue)) {
        try {
            $tags = @((Get-SECSecret -SecretId $Id -Region $secretRegion).Tags | Where-Object { $_.Key -ceq 'RotatorLogin' } | ForEach-Object { [string]$_.Value })
        } catch {
            Write-RotatorError ("the secret's tags cannot be read: " + (Get-FirstLine $_.Exception.Message))
            exit 4
        }
    } else {
        # Read-Secret has required the AWS CLI when AWS Tools for PowerShell are missing.
        $ErrorActionPreference = 'Continue'
        $awsOutput = & aws secretsmanager describe-secret --region $secretRegion --secret-id $Id --query "Tags[?Key=='RotatorLogin'].Value" --output json 2>$null
        $awsStatus = $LASTEXITCODE
        $ErrorActionPreference = 'Stop'
        if ($awsStatus -ne 0) {
            Write-RotatorError "the secret's tags cannot be read (aws exited with $awsStatus)"
            exit 4
        }
        try {
            $tags = @(($awsOutput | ForEach-Object { [string]$_ }) -join "`n" | ConvertFrom-Json | ForEach-Object { [string]$_ })
        } catch {
            Write-RotatorError "the secret's tags cannot be read from the AWS CLI's answer"
            exit 4
        }
    }
    if ($tags.Count -ne 1) { return '' }
    return [string]$tags[0]
}

# One version of a secret (by VersionId, else by stage), parsed; $What names it in errors.
function Read-Secret([string]$Id, [string]$VersionId, [string]$Stage, [string]$What) {
    $secretRegion = ($Id -split ':')[3]
    $selector = @('--version-stage', $Stage)
    if ($VersionId.Length -gt 0) { $selector = @('--version-id', $VersionId) }
    $secretString = $null
    if ($null -ne (Get-Command -Name 'Get-SECSecretValue' -ErrorAction SilentlyContinue)) {
        try {
            if ($VersionId.Length -gt 0) {
                $response = Get-SECSecretValue -SecretId $Id -VersionId $VersionId -Region $secretRegion
            } else {
                $response = Get-SECSecretValue -SecretId $Id -VersionStage $Stage -Region $secretRegion
            }
            $secretString = $response.SecretString
            $script:readStages = @($response.VersionStages)
        } catch {
            Write-RotatorError ("$What cannot be read: " + (Get-FirstLine $_.Exception.Message))
            exit 4
        }
    } elseif ($null -ne (Get-Command -Name 'aws' -CommandType Application -ErrorAction SilentlyContinue)) {
        $ErrorActionPreference = 'Continue'
        $awsOutput = & aws secretsmanager get-secret-value --region $secretRegion --secret-id $Id @selector --query '[VersionStages, SecretString]' --output json 2>$null
        $awsStatus = $LASTEXITCODE
        $ErrorActionPreference = 'Stop'
        if ($awsStatus -ne 0) {
            Write-RotatorError "$What cannot be read (aws exited with $awsStatus)"
            exit 4
        }
        # The CLI's own JSON: [stages, the SecretString as one JSON string].
        try {
            $envelope = ($awsOutput | ForEach-Object { [string]$_ }) -join "`n" | ConvertFrom-Json
        } catch {
            Write-RotatorError "$What cannot be read from the AWS CLI's answer"
            exit 4
        }
        $script:readStages = @($envelope[0])
        $secretString = [string]$envelope[1]
    } else {
        Write-RotatorError 'neither AWS Tools for PowerShell (Get-SECSecretValue) nor the AWS CLI (aws) is installed'
        exit 7
    }

    # Before ConvertFrom-Json, whose handling of a repeated name differs between versions.
    $names = Test-JsonMemberNames ([string]$secretString)
    if ($names -eq 'duplicate') {
        Write-RotatorError "$What holds an object with two members of one name (compared ignoring case)"
        exit 4
    }
    if ($names -ne 'ok') {
        Write-RotatorError 'the secret value is not valid JSON'
        exit 4
    }
    try {
        $parsed = $secretString | ConvertFrom-Json
    } catch {
        # The parser's message may quote the secret: say nothing more.
        Write-RotatorError 'the secret value is not valid JSON'
        exit 4
    }
    if ($null -eq $parsed -or $parsed -isnot [System.Management.Automation.PSCustomObject]) {
        Write-RotatorError 'the secret value is not a JSON object'
        exit 4
    }
    return $parsed
}

# The login, and the master secret, that this host's owner lets the secret change here (the shared
# layout, where whoever can make a secret under the fleet's prefix chooses its tags and its master),
# read as hosts/linux/secret.py reads them (enrolled): one line per secret, '<secret ARN> <login>
# [<master secret ARN>]' (complete ARNs, single spaces; # starts a comment line), in
# $Path (%ProgramData%\rotator\enrolled), which, like the lock directory it lies in, SYSTEM or
# Administrators own and nobody else may write. Returns @(login, master ('' for none)); exit 3, nothing
# changed, when the secret is not listed or the file could be read two ways (a duplicate, an odd byte).
function Read-EnrolledEntry([string]$Path, [string]$Id) {
    $directory = [System.IO.Path]::GetDirectoryName($Path)
    $trusted = @('NT AUTHORITY\SYSTEM', 'BUILTIN\Administrators')
    $writeRights = [System.Security.AccessControl.FileSystemRights]'Write, Delete, ChangePermissions, TakeOwnership'
    foreach ($item in @($directory, $Path)) {
        if (-not (Test-Path -LiteralPath $item)) {
            Write-RotatorError "the enrolment file $Path cannot be read: this host's owner lists there the secrets that may change a login on it, and this host lists none"
            exit 3
        }
        $acl = Get-Acl -LiteralPath $item
        $writers = @($acl.Access | Where-Object { $_.AccessControlType -eq 'Allow' -and $trusted -notcontains [string]$_.IdentityReference -and ($_.FileSystemRights -band $writeRights) })
        if (((Get-Item -LiteralPath $item -Force).Attributes -band [System.IO.FileAttributes]::ReparsePoint) -or
            $trusted -notcontains $acl.Owner -or $writers.Count -ne 0) {
            Write-RotatorError "the enrolment file's $item is not one that only SYSTEM or Administrators may write: nothing was changed"
            exit 3
        }
    }
    $bytes = [System.IO.File]::ReadAllBytes($Path)
    if (@($bytes | Where-Object { $_ -ne 10 -and $_ -ne 13 -and ($_ -lt 32 -or $_ -gt 126) }).Count -ne 0) {
        Write-RotatorError "the enrolment file $Path holds a byte that is not printable ASCII: nothing was changed"
        exit 3
    }
    # A Dictionary compares its string keys ordinally, where a hashtable would ignore case.
    $entries = New-Object 'System.Collections.Generic.Dictionary[string,string[]]'
    $lines = [System.Text.Encoding]::ASCII.GetString($bytes) -split "`n"
    if ($lines[-1] -ceq '') { $lines = $lines[0..($lines.Count - 2)] }
    $number = 0
    foreach ($line in $lines) {
        $number++
        # Windows tools end lines with CR LF; any other CR is refused by the pattern below.
        $line = $line -creplace "`r$", ''
        if ($line -ceq '' -or $line.StartsWith('#')) { continue }
        $fields = $line -csplit ' '
        if ($fields.Count -lt 2 -or $fields.Count -gt 3 -or $fields[0] -cnotmatch $reCompleteSecretArn -or
            $fields[1] -cnotmatch '^[A-Za-z0-9_.@+=-]{1,128}$' -or ($fields.Count -eq 3 -and $fields[2] -cnotmatch $reCompleteSecretArn)) {
            Write-RotatorError "line $number of the enrolment file $Path is not '<secret ARN> <login> [<master secret ARN>]' (complete ARNs, single spaces): nothing was changed"
            exit 3
        }
        if ($entries.ContainsKey($fields[0])) {
            Write-RotatorError "the enrolment file $Path lists the secret on line $number a second time: nothing was changed"
            exit 3
        }
        $master = ''
        if ($fields.Count -eq 3) { $master = $fields[2] }
        $entries[$fields[0]] = @($fields[1], $master)
    }
    if (-not $entries.ContainsKey($Id)) {
        Write-RotatorError "this host's enrolment file $Path does not list the secret ${Id}: its owner adds the line that lets it change a login here; nothing was changed"
        exit 3
    }
    return $entries[$Id]
}

# ---- one command for this secret at a time ----------------------------------------------------
# From reading the version to the result line, as on Linux (docs/THREAT-MODEL.md): two commands for
# one secret (two copies of a step, a restore racing a late set) must not interleave. The lock is a
# file held open without sharing, in a directory that SYSTEM or Administrators own.
function Enter-SecretLock([string]$Id) {
    $directory = Join-Path ([Environment]::GetFolderPath('CommonApplicationData')) 'rotator'
    $trusted = @('NT AUTHORITY\SYSTEM', 'BUILTIN\Administrators')
    if (-not (Test-Path -LiteralPath $directory)) {
        [void](New-Item -ItemType Directory -Path $directory)
        $acl = New-Object System.Security.AccessControl.DirectorySecurity
        $acl.SetAccessRuleProtection($true, $false)
        foreach ($who in $trusted) {
            $acl.AddAccessRule((New-Object System.Security.AccessControl.FileSystemAccessRule($who, 'FullControl', 'ContainerInherit,ObjectInherit', 'None', 'Allow')))
        }
        Set-Acl -LiteralPath $directory -AclObject $acl
    }
    $item = Get-Item -LiteralPath $directory -Force
    if (-not $item.PSIsContainer -or ($item.Attributes -band [System.IO.FileAttributes]::ReparsePoint) -or
        $trusted -notcontains (Get-Acl -LiteralPath $directory).Owner) {
        Write-RotatorError "the lock directory $directory is not a directory that SYSTEM or Administrators own"
        exit 6
    }
    $sha = [System.Security.Cryptography.SHA256]::Create()
    $hash = -join ($sha.ComputeHash([System.Text.Encoding]::UTF8.GetBytes($Id)) | ForEach-Object { $_.ToString('x2') })
    $path = Join-Path $directory ($hash + '.lock')
    $until = [DateTime]::UtcNow.AddSeconds(100)
    while ($true) {
        try {
            return [System.IO.File]::Open($path, 'OpenOrCreate', 'ReadWrite', 'None')
        } catch [System.IO.IOException] {
            if ([DateTime]::UtcNow -gt $until) {
                Write-RotatorError 'another command for this secret held the host lock for 100 s'
                exit 6
            }
            Start-Sleep -Milliseconds 250
        }
    }
}
$secretLock = Enter-SecretLock $secretId

$readStages = @()
$secret = Read-Secret $secretId $versionId '' 'the secret version'
# A set for a version that lost its label (the rollback of another copy of the step removed it, or
# the rotation finished) changes nothing: no host may end on a password no label holds.
if ($action -eq 'set' -and $readStages -notcontains 'AWSPENDING' -and $readStages -notcontains 'AWSCURRENT') {
    Write-RotatorError 'the version is neither AWSPENDING nor AWSCURRENT any more (the rotation was finished or rolled back without this command), so nothing was changed'
    exit 8
}

# A text field of $From (the secret version unless another is given).
function Get-SecretText([string]$Name, [string]$Default, [int]$Limit, $From = $secret) {
    $property = $From.PSObject.Properties[$Name]
    $value = $null
    if ($null -ne $property) { $value = $property.Value }
    if (($null -eq $value -or ($value -is [string] -and $value.Length -eq 0)) -and $Default.Length -gt 0) { $value = $Default }
    if ($null -eq $value) {
        Write-RotatorError "the secret JSON lacks the field '$Name'"
        exit 4
    }
    if ($value -isnot [string] -or $value.Length -eq 0) {
        Write-RotatorError "the secret field '$Name' is not a non-empty string"
        exit 4
    }
    if ($value -match '[\x00-\x1f\x7f]') {
        Write-RotatorError "the secret field '$Name' contains control characters"
        exit 4
    }
    if ($value.Length -gt $Limit) {
        Write-RotatorError "the secret field '$Name' is longer than $Limit characters"
        exit 4
    }
    return $value
}

$username = Get-SecretText 'username' '' 128
# The shared layout pins each secret's login with its RotatorLogin tag, which only the secret's
# administrators may change (its resource policy). The host reads it itself, as hosts/linux/flow.sh does.
$fleetDocument = $false
if ($action -eq 'set' -and $pinnedLogin -ceq 'tag:RotatorLogin') {
    $fleetDocument = $true
    $pinnedLogin = Read-LoginTag $secretId
    if (-not (Test-Parameter $pinnedLogin '^[A-Za-z0-9_.@+=-]{1,128}$')) {
        Write-RotatorError 'the secret carries no RotatorLogin tag naming a login: an administrator pins it when enrolling the secret'
        exit 3
    }
}
# But whoever can make a secret under the fleet's prefix chooses its tags and its master, and whoever
# may publish the documents their Login: so this host's owner says which secret may change which login
# through which master here (Read-EnrolledEntry), as on Linux. A fleet host needs the file; wherever it
# exists it decides, whatever the Login parameter says.
$enrolled = $null
$enrolmentPath = Join-Path (Join-Path ([Environment]::GetFolderPath('CommonApplicationData')) 'rotator') 'enrolled'
if ($action -eq 'set' -and ($fleetDocument -or (Test-Path -LiteralPath $enrolmentPath))) {
    $enrolled = Read-EnrolledEntry $enrolmentPath $secretId
    if ($pinnedLogin.Length -gt 0 -and $pinnedLogin -cne $enrolled[0]) {
        Write-RotatorError "the stack pins '$pinnedLogin' (its document's Login or the secret's RotatorLogin tag), but this host lets the secret change only '$($enrolled[0])'"
        exit 3
    }
    $pinnedLogin = $enrolled[0]
}
# The login the stack pins (the document's Login parameter): a version naming another changes nothing.
if ($action -eq 'set' -and $pinnedLogin.Length -gt 0 -and $username -cne $pinnedLogin -and $username -cne ($pinnedLogin + '_clone')) {
    Write-RotatorError "the version names the login '$username', but this stack rotates only '$pinnedLogin' (and '${pinnedLogin}_clone')"
    exit 3
}
$password = Get-SecretText 'password' '' 128
$dbname = Get-SecretText 'dbname' 'master' 128
$port = 1433
$portProperty = $secret.PSObject.Properties['port']
if ($null -ne $portProperty -and $null -ne $portProperty.Value -and [string]$portProperty.Value -ne '') {
    $portText = [string]$portProperty.Value
    if ($portProperty.Value -is [bool] -or $portText -notmatch '^[0-9]{1,5}$') {
        Write-RotatorError "the secret field 'port' is not a TCP port number"
        exit 4
    }
    $port = [int]$portText
}
if ($port -lt 1 -or $port -gt 65535) {
    Write-RotatorError "the secret field 'port' is not a TCP port number"
    exit 4
}
# Alternating users when the secret names a master secret (docs/host-contract.md).
$masterArn = ''
if ($null -ne $secret.PSObject.Properties['masterarn']) {
    $masterArn = Get-SecretText 'masterarn' '' 2048
    if (-not (Test-Parameter $masterArn $reSecretId)) {
        Write-RotatorError "the secret field 'masterarn' is not the ARN of a secret"
        exit 4
    }
}
if ($null -ne $enrolled -and $masterArn -cne $enrolled[1]) {
    Write-RotatorError "the version names the master secret '$masterArn', but this host lets the secret use only '$($enrolled[1])' ('' for none)"
    exit 3
}

# ---- SQL Server --------------------------------------------------------------------------
Add-Type -AssemblyName System.Data
$dataSource = 'tcp:127.0.0.1,' + $port

function Find-SqlException($ErrorRecord) {
    $ex = $ErrorRecord.Exception
    while ($null -ne $ex -and $ex -isnot [System.Data.SqlClient.SqlException]) { $ex = $ex.InnerException }
    return $ex
}

# What went wrong in a SQL call, for one line of error output.
function Get-SqlErrorDetail($ErrorRecord) {
    $sqlError = Find-SqlException $ErrorRecord
    if ($null -eq $sqlError) { return 'unexpected error ' + $ErrorRecord.Exception.GetType().FullName }
    return 'error ' + $sqlError.Number + ': ' + (Get-FirstLine $sqlError.Message)
}

# A connection to $Database, with SQL authentication as $Name when given, else with Windows
# authentication as this process (SYSTEM). No pooling: a pooled connection opened with an older
# password must not answer for a new one.
function New-SqlConnection([string]$Database, [string]$Name, [string]$LoginPassword) {
    $builder = New-Object System.Data.SqlClient.SqlConnectionStringBuilder
    $builder['Data Source'] = $dataSource
    $builder['Initial Catalog'] = $Database
    $builder['Integrated Security'] = ($Name.Length -eq 0)
    $builder['Pooling'] = $false
    $builder['Connect Timeout'] = 15
    $builder['Application Name'] = 'rotator'
    if ($Name.Length -eq 0) { return New-Object System.Data.SqlClient.SqlConnection($builder.ConnectionString) }
    $securePassword = New-Object System.Security.SecureString
    foreach ($character in $LoginPassword.ToCharArray()) { $securePassword.AppendChar($character) }
    $securePassword.MakeReadOnly()
    $credential = New-Object System.Data.SqlClient.SqlCredential($Name, $securePassword)
    return New-Object System.Data.SqlClient.SqlConnection($builder.ConnectionString, $credential)
}

# Log in as the version's login with its password. 0 accepted, 5 refused, 6 unreachable.
function Test-Login {
    $connection = New-SqlConnection $dbname $username $password
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = 'SELECT 1'
        [void]$command.ExecuteScalar()
        $script:loginError = ''
        return 0
    } catch {
        $sqlError = Find-SqlException $_
        if ($null -eq $sqlError) {
            $script:loginError = Get-FirstLine $_.Exception.Message
            return 6
        }
        $script:loginError = 'error ' + $sqlError.Number + ': ' + (Get-FirstLine $sqlError.Message)
        # 18456 login failed, 18486 locked out, 18487/18488 password expired or must change,
        # 4060 cannot open the database.
        if (@(18456, 18486, 18487, 18488, 4060) -contains $sqlError.Number) { return 5 }
        return 6
    } finally {
        $connection.Dispose()
    }
}

# Ends the script unless Test-Login's status says the login was accepted.
function Assert-LoginAccepted([int]$Status) {
    if ($Status -eq 5) {
        Write-RotatorError ("SQL Server refused the login '$username' with this password: " + $loginError)
        exit 5
    }
    if ($Status -ne 0) {
        Write-RotatorError ("SQL Server is not reachable on 127.0.0.1,${port}: " + $loginError)
        exit 6
    }
}

# The administrator: SYSTEM with Windows authentication, or with alternating users the master
# secret's SQL Server login (Use-MasterLogin).
$adminName = ''
$adminPassword = ''
$administrator = 'SYSTEM with Windows authentication'

# Runs $Sql as the administrator in master with @login and @partner (AWSCURRENT's login with
# alternating users, or the login a check is about) as bound parameters, and @password only when
# asked (WithPassword): a trace or an Extended Events session on rpc_completed records every bound
# value, so the password goes only to the command that sets it. Returns its first value.
function Invoke-Admin([string]$Sql, [string]$Partner = '', [bool]$WithPassword = $false) {
    $connection = New-SqlConnection 'master' $adminName $adminPassword
    try {
        $connection.Open()
        $command = $connection.CreateCommand()
        $command.CommandText = $Sql
        $command.CommandTimeout = 60
        $bound = [ordered]@{ '@login' = $username; '@partner' = $Partner }
        if ($WithPassword) { $bound['@password'] = $password }
        foreach ($name in $bound.Keys) {
            [void]$command.Parameters.Add($name, [System.Data.SqlDbType]::NVarChar, 4000)
            $command.Parameters[$name].Value = $bound[$name]
        }
        return $command.ExecuteScalar()
    } finally {
        $connection.Dispose()
    }
}

# Invoke-Admin, ending the script with exit 6 and $What when SQL Server refuses.
function Invoke-AdminOrFail([string]$What, [string]$Sql, [string]$Partner = '', [bool]$WithPassword = $false) {
    try {
        return Invoke-Admin $Sql $Partner $WithPassword
    } catch {
        Write-RotatorError ("${What} (as $administrator): " + (Get-SqlErrorDetail $_))
        exit 6
    }
}

$sqlLoginCountSql = "SELECT COUNT(*) FROM sys.sql_logins WHERE name = @login"

# What makes the login in @partner an administrator, '' when nothing does: membership (direct or
# through other server roles) in sysadmin or securityadmin, or CONTROL SERVER, ALTER ANY LOGIN or
# IMPERSONATE ANY LOGIN granted to it, to a role it is in or to public, or IMPERSONATE, CONTROL,
# ALTER or TAKE OWNERSHIP on a login or server role (the copy of rights would hand those on). An administrator that
# cannot see other logins' roles and permissions cannot tell: an error (exit 6), never ''.
$privilegedSql = @'
IF NOT (HAS_PERMS_BY_NAME(NULL, NULL, N'VIEW ANY DEFINITION') = 1 OR IS_SRVROLEMEMBER(N'securityadmin') = 1
        OR IS_SRVROLEMEMBER(N'sysadmin') = 1)
BEGIN
    RAISERROR(N'cannot see the server roles and permissions of other logins (needs VIEW ANY DEFINITION or securityadmin)', 16, 1);
    RETURN;
END;
DECLARE @principal int = SUSER_ID(@partner);
IF @principal IS NULL
BEGIN
    RAISERROR(N'the login to check is not visible', 16, 1);
    RETURN;
END;
WITH held(principal_id) AS (
    SELECT @principal
    UNION ALL
    SELECT principal_id FROM sys.server_principals WHERE name = N'public' AND type = 'R'
    UNION ALL
    SELECT m.role_principal_id FROM sys.server_role_members m JOIN held h ON m.member_principal_id = h.principal_id),
reasons(reason) AS (
    SELECT N'member of sysadmin' WHERE IS_SRVROLEMEMBER(N'sysadmin', @partner) = 1
    UNION
    SELECT N'member of ' + r.name FROM held h JOIN sys.server_principals r ON r.principal_id = h.principal_id
     WHERE r.name IN (N'sysadmin', N'securityadmin') AND r.type = 'R'
    UNION
    SELECT p.permission_name + CASE WHEN p.grantee_principal_id = @principal THEN N'' ELSE N' through ' + g.name END
      FROM sys.server_permissions p JOIN sys.server_principals g ON g.principal_id = p.grantee_principal_id
     WHERE p.grantee_principal_id IN (SELECT principal_id FROM held) AND p.class = 100 AND p.state IN ('G', 'W')
       AND p.permission_name IN (N'CONTROL SERVER', N'ALTER ANY LOGIN', N'IMPERSONATE ANY LOGIN')
    UNION
    SELECT p.permission_name + N' ON ' + QUOTENAME(t.name) + CASE WHEN p.grantee_principal_id = @principal THEN N'' ELSE N' through ' + g.name END
      FROM sys.server_permissions p JOIN sys.server_principals g ON g.principal_id = p.grantee_principal_id
      JOIN sys.server_principals t ON t.principal_id = p.major_id
     WHERE p.grantee_principal_id IN (SELECT principal_id FROM held) AND p.class = 101 AND p.state IN ('G', 'W')
       AND p.permission_name IN (N'IMPERSONATE', N'CONTROL', N'ALTER', N'TAKE OWNERSHIP'))
SELECT ISNULL(STUFF((SELECT N'; ' + reason FROM reasons ORDER BY reason FOR XML PATH(''), TYPE).value('.', 'nvarchar(max)'), 1, 2, N''), N'');
'@

# Ends the script (exit 3) before anything changes when $Name holds an administrator's rights:
# whoever can write the secret must not be able to make this host change, or clone, an administrator.
function Assert-NotPrivileged([string]$Name) {
    $reasons = [string](Invoke-AdminOrFail "whether '$Name' is privileged could not be read" $privilegedSql $Name)
    if ($reasons.Length -gt 0) {
        Write-RotatorError "the login '$Name' is privileged ($reasons): rotator refuses to change or clone an administrator"
        exit 3
    }
}

# The version's password on its existing SQL login, then proven by logging in.
function Set-LoginPassword {
    $count = Invoke-AdminOrFail 'SQL Server could not be administered' $sqlLoginCountSql
    if ([int]$count -ne 1) {
        Write-RotatorError "the SQL login '$username' does not exist"
        exit 3
    }
    Assert-NotPrivileged $username
    $alter = @'
DECLARE @sql nvarchar(max) = N'ALTER LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, '''');
IF @sql IS NULL
BEGIN
    RAISERROR(N'the login name or the password is too long for QUOTENAME', 16, 1);
    RETURN;
END;
EXEC sys.sp_executesql @sql;
'@
    [void](Invoke-AdminOrFail "the password of '$username' could not be changed" $alter '' $true)
    Assert-LoginAccepted (Test-Login)
}

# ---- alternating users -------------------------------------------------------------------------
# Both logins are SQL Server logins, like the login of single user. The master secret holds a SQL
# Server login (SQL authentication: SYSTEM cannot sign in as another Windows account) that
# administers them instead of SYSTEM.
function Use-MasterLogin {
    $master = Read-Secret $masterArn '' 'AWSCURRENT' 'the master secret'
    $name = Get-SecretText 'username' '' 128 $master
    if ($name.Contains('\')) {
        Write-RotatorError "the master login '$name' is a Windows account; the master secret must hold a SQL Server login"
        exit 4
    }
    $script:adminPassword = Get-SecretText 'password' '' 128 $master
    $script:adminName = $name
    $script:administrator = "the master login '$name'"
}

# The login with this version's password if it is missing (with the partner's default database and
# password policy). Returns 1 when it created the login. The only alternating-users command that is
# given the password.
$createLoginSql = @'
DECLARE @sql nvarchar(max), @created int = 0;
IF NOT EXISTS (SELECT 1 FROM sys.server_principals WHERE name = @login)
BEGIN
    SELECT @sql = N'CREATE LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, '''')
               + N', DEFAULT_DATABASE = ' + QUOTENAME(l.default_database_name)
               + N', CHECK_POLICY = ' + CASE WHEN l.is_policy_checked = 1 THEN N'ON' ELSE N'OFF' END
               + N', CHECK_EXPIRATION = ' + CASE WHEN l.is_expiration_checked = 1 THEN N'ON' ELSE N'OFF' END
      FROM sys.sql_logins l WHERE l.name = @partner;
    IF @sql IS NULL
    BEGIN
        RAISERROR(N'the login name or the password is too long for QUOTENAME', 16, 1);
        RETURN;
    END;
    -- 15025: another run of this step created it first.
    BEGIN TRY
        EXEC sys.sp_executesql @sql;
        SET @created = 1;
    END TRY
    BEGIN CATCH
        IF ERROR_NUMBER() <> 15025
        BEGIN
            THROW;
        END;
    END CATCH;
END;
SELECT @created;
'@

# The rights of the partner (who 'S') and of the login (who 'T'), as data: server permissions and
# server role memberships, and in every database where either has a user (and the master login can
# enter), its database permissions and role memberships. Each permission carries the ON clause that
# names its securable, built here with QUOTENAME; NULL for a kind of securable this script cannot
# name. What the login owns (a database, schemas, roles, objects, server roles, endpoints) is listed
# apart: ownership is a right that a copy of permissions cannot take away.
$collectRightsSql = @'
CREATE TABLE #rights (db sysname NULL, who char(1) NOT NULL, securable nvarchar(max) NULL,
                      permission nvarchar(128) NOT NULL, state char(1) NOT NULL);
CREATE TABLE #members (db sysname NULL, who char(1) NOT NULL, role sysname NOT NULL);
CREATE TABLE #users (db sysname NOT NULL, target sysname NULL, readOnly bit NOT NULL);
CREATE TABLE #owned (what nvarchar(600) NOT NULL);
INSERT #rights
SELECT NULL, CASE WHEN p.grantee_principal_id = SUSER_ID(@partner) THEN 'S' ELSE 'T' END,
       CASE p.class WHEN 100 THEN N''
                    WHEN 101 THEN N' ON ' + CASE WHEN sp.type = 'R' THEN N'SERVER ROLE' ELSE N'LOGIN' END + N'::' + QUOTENAME(sp.name)
                    WHEN 105 THEN N' ON ENDPOINT::' + QUOTENAME(e.name) END,
       p.permission_name, p.state
  FROM sys.server_permissions p
  LEFT JOIN sys.server_principals sp ON p.class = 101 AND sp.principal_id = p.major_id
  LEFT JOIN sys.endpoints e ON p.class = 105 AND e.endpoint_id = p.major_id
 WHERE p.grantee_principal_id IN (SUSER_ID(@partner), SUSER_ID(@login)) AND p.state IN ('G', 'W', 'D');
INSERT #members
SELECT NULL, CASE WHEN m.member_principal_id = SUSER_ID(@partner) THEN 'S' ELSE 'T' END, r.name
  FROM sys.server_role_members m JOIN sys.server_principals r ON r.principal_id = m.role_principal_id
 WHERE m.member_principal_id IN (SUSER_ID(@partner), SUSER_ID(@login));
INSERT #owned
SELECT N'the database ' + QUOTENAME(name) FROM sys.databases WHERE owner_sid = SUSER_SID(@login)
UNION ALL
SELECT N'the server role ' + QUOTENAME(name) FROM sys.server_principals WHERE owning_principal_id = SUSER_ID(@login)
UNION ALL
SELECT N'the endpoint ' + QUOTENAME(name) FROM sys.endpoints WHERE principal_id = SUSER_ID(@login);
DECLARE @collectDatabase nvarchar(max) = N'
DECLARE @sourceId int, @targetId int, @target sysname;
SELECT @sourceId = principal_id FROM sys.database_principals WHERE sid = SUSER_SID(@partner);
SELECT @targetId = principal_id, @target = name FROM sys.database_principals WHERE sid = SUSER_SID(@login);
IF @sourceId IS NULL AND @targetId IS NULL RETURN;
INSERT #users VALUES (DB_NAME(), @target, @readOnly);
INSERT #rights
SELECT DB_NAME(), CASE WHEN p.grantee_principal_id = @sourceId THEN ''S'' ELSE ''T'' END,
       CASE p.class
            WHEN 0 THEN N''''
            WHEN 1 THEN N'' ON OBJECT::'' + QUOTENAME(OBJECT_SCHEMA_NAME(p.major_id)) + N''.'' + QUOTENAME(OBJECT_NAME(p.major_id))
                        + CASE WHEN p.minor_id = 0 THEN N'''' ELSE N'' ('' + QUOTENAME(COL_NAME(p.major_id, p.minor_id)) + N'')'' END
            WHEN 3 THEN N'' ON SCHEMA::'' + QUOTENAME(SCHEMA_NAME(p.major_id))
            WHEN 4 THEN N'' ON '' + CASE dp.type WHEN ''R'' THEN N''ROLE'' WHEN ''A'' THEN N''APPLICATION ROLE'' ELSE N''USER'' END
                        + N''::'' + QUOTENAME(dp.name)
            WHEN 5 THEN N'' ON ASSEMBLY::'' + QUOTENAME(a.name)
            WHEN 6 THEN N'' ON TYPE::'' + QUOTENAME(SCHEMA_NAME(t.schema_id)) + N''.'' + QUOTENAME(t.name)
            WHEN 10 THEN N'' ON XML SCHEMA COLLECTION::'' + QUOTENAME(SCHEMA_NAME(x.schema_id)) + N''.'' + QUOTENAME(x.name)
            WHEN 24 THEN N'' ON SYMMETRIC KEY::'' + QUOTENAME(sk.name)
            WHEN 25 THEN N'' ON CERTIFICATE::'' + QUOTENAME(c.name)
            WHEN 26 THEN N'' ON ASYMMETRIC KEY::'' + QUOTENAME(ak.name) END,
       p.permission_name, p.state
  FROM sys.database_permissions p
  LEFT JOIN sys.database_principals dp ON p.class = 4 AND dp.principal_id = p.major_id
  LEFT JOIN sys.assemblies a ON p.class = 5 AND a.assembly_id = p.major_id
  LEFT JOIN sys.types t ON p.class = 6 AND t.user_type_id = p.major_id
  LEFT JOIN sys.xml_schema_collections x ON p.class = 10 AND x.xml_collection_id = p.major_id
  LEFT JOIN sys.symmetric_keys sk ON p.class = 24 AND sk.symmetric_key_id = p.major_id
  LEFT JOIN sys.certificates c ON p.class = 25 AND c.certificate_id = p.major_id
  LEFT JOIN sys.asymmetric_keys ak ON p.class = 26 AND ak.asymmetric_key_id = p.major_id
 WHERE p.grantee_principal_id IN (@sourceId, @targetId) AND p.state IN (''G'', ''W'', ''D'');
INSERT #members
SELECT DB_NAME(), CASE WHEN m.member_principal_id = @sourceId THEN ''S'' ELSE ''T'' END, USER_NAME(m.role_principal_id)
  FROM sys.database_role_members m WHERE m.member_principal_id IN (@sourceId, @targetId);
INSERT #owned
SELECT N''the database '' + QUOTENAME(DB_NAME()) + N'' (as dbo)'' WHERE @targetId = 1
UNION ALL
SELECT N''the schema '' + QUOTENAME(name) + N'' in '' + QUOTENAME(DB_NAME()) FROM sys.schemas WHERE principal_id = @targetId
UNION ALL
SELECT N''the role '' + QUOTENAME(name) + N'' in '' + QUOTENAME(DB_NAME()) FROM sys.database_principals WHERE owning_principal_id = @targetId
UNION ALL
SELECT N''the object '' + QUOTENAME(name) + N'' in '' + QUOTENAME(DB_NAME()) FROM sys.objects WHERE principal_id = @targetId;
';
DECLARE @db sysname, @readOnly bit, @inDatabase nvarchar(600);
DECLARE databases CURSOR LOCAL FAST_FORWARD FOR
    SELECT name, is_read_only FROM sys.databases WHERE state = 0 AND HAS_DBACCESS(name) = 1;
OPEN databases;
FETCH NEXT FROM databases INTO @db, @readOnly;
WHILE @@FETCH_STATUS = 0
BEGIN
    SET @inDatabase = QUOTENAME(@db) + N'.sys.sp_executesql';
    EXEC @inDatabase @collectDatabase, N'@login sysname, @partner sysname, @readOnly bit',
         @login = @login, @partner = @partner, @readOnly = @readOnly;
    FETCH NEXT FROM databases INTO @db, @readOnly;
END;
CLOSE databases;
DEALLOCATE databases;
'@

# After $collectRightsSql, before anything changes: why the partner's rights cannot be made the
# login's exactly, '' when they can. A permission on a securable the script cannot name, a
# permission name that is not a keyword, anything the login owns, or a right the login holds
# beyond the partner's in a read-only database (where nothing can be revoked).
$uncopyableRightsSql = @'
SELECT ISNULL(STUFF((SELECT TOP 5 N'; ' + reason FROM (
    SELECT N'a permission on a kind of securable rotator cannot name'
           + ISNULL(N' in the database ' + QUOTENAME(db), N' of the server') AS reason
      FROM #rights WHERE securable IS NULL OR permission LIKE N'%[^A-Z ]%'
    UNION
    SELECT N'the login owns ' + what FROM #owned
    UNION
    SELECT N'the login holds rights the partner lacks in the read-only database ' + QUOTENAME(u.db)
      FROM #users u
     WHERE u.readOnly = 1
       AND (EXISTS (SELECT 1 FROM #rights t WHERE t.db = u.db AND t.who = 'T' AND NOT EXISTS
                       (SELECT 1 FROM #rights s WHERE s.db = u.db AND s.who = 'S' AND s.securable = t.securable
                           AND s.permission = t.permission AND s.state = t.state))
            OR EXISTS (SELECT 1 FROM #members t WHERE t.db = u.db AND t.who = 'T' AND NOT EXISTS
                          (SELECT 1 FROM #members s WHERE s.db = u.db AND s.who = 'S' AND s.role = t.role)))) reasons
  ORDER BY reason FOR XML PATH(''), TYPE).value('.', 'nvarchar(max)'), 1, 2, N''), N'');
'@
$checkRightsSql = $collectRightsSql + "`n" + $uncopyableRightsSql

# After $collectRightsSql: exactly the partner's rights for the login, on the server and in every
# writable database where either has a user (the login's user created where it has none). First
# what the login holds and the partner lacks is revoked (roles dropped, permissions revoked with
# CASCADE, a DENY included), then what the partner holds and the login lacks is granted, denied or
# joined. Every name in a statement is QUOTENAME'd (the securables' ON clauses too); a permission
# is a keyword from the catalog ($uncopyableRightsSql refused any other).
$applyRightsSql = @'
DECLARE @changes TABLE (step int NOT NULL, db sysname NULL, statement nvarchar(max) NOT NULL);
INSERT @changes
SELECT 0, u.db, N'CREATE USER ' + QUOTENAME(@login) + N' FOR LOGIN ' + QUOTENAME(@login)
  FROM #users u WHERE u.target IS NULL AND u.readOnly = 0;
INSERT @changes
SELECT 1, t.db, N'ALTER ' + CASE WHEN t.db IS NULL THEN N'SERVER ROLE ' ELSE N'ROLE ' END + QUOTENAME(t.role)
               + N' DROP MEMBER ' + QUOTENAME(ISNULL(u.target, @login))
  FROM #members t LEFT JOIN #users u ON u.db = t.db
 WHERE t.who = 'T' AND ISNULL(u.readOnly, 0) = 0 AND NOT EXISTS
       (SELECT 1 FROM #members s WHERE s.who = 'S' AND (s.db = t.db OR (s.db IS NULL AND t.db IS NULL)) AND s.role = t.role);
INSERT @changes
SELECT 2, t.db, N'REVOKE ' + t.permission + t.securable + N' FROM ' + QUOTENAME(ISNULL(u.target, @login)) + N' CASCADE'
  FROM #rights t LEFT JOIN #users u ON u.db = t.db
 WHERE t.who = 'T' AND ISNULL(u.readOnly, 0) = 0 AND NOT EXISTS
       (SELECT 1 FROM #rights s WHERE s.who = 'S' AND (s.db = t.db OR (s.db IS NULL AND t.db IS NULL))
           AND s.securable = t.securable AND s.permission = t.permission AND s.state = t.state);
INSERT @changes
SELECT 3, s.db, N'ALTER ' + CASE WHEN s.db IS NULL THEN N'SERVER ROLE ' ELSE N'ROLE ' END + QUOTENAME(s.role)
               + N' ADD MEMBER ' + QUOTENAME(ISNULL(u.target, @login))
  FROM #members s LEFT JOIN #users u ON u.db = s.db
 WHERE s.who = 'S' AND ISNULL(u.readOnly, 0) = 0 AND NOT EXISTS
       (SELECT 1 FROM #members t WHERE t.who = 'T' AND (t.db = s.db OR (t.db IS NULL AND s.db IS NULL)) AND t.role = s.role);
INSERT @changes
SELECT 4, s.db, CASE WHEN s.state = 'D' THEN N'DENY ' ELSE N'GRANT ' END + s.permission + s.securable
               + N' TO ' + QUOTENAME(ISNULL(u.target, @login)) + CASE WHEN s.state = 'W' THEN N' WITH GRANT OPTION' ELSE N'' END
  FROM #rights s LEFT JOIN #users u ON u.db = s.db
 WHERE s.who = 'S' AND ISNULL(u.readOnly, 0) = 0 AND NOT EXISTS
       (SELECT 1 FROM #rights t WHERE t.who = 'T' AND (t.db = s.db OR (t.db IS NULL AND s.db IS NULL))
           AND t.securable = s.securable AND t.permission = s.permission AND t.state = s.state);
DECLARE @sql nvarchar(max), @changeDb sysname, @run nvarchar(600);
DECLARE changes CURSOR LOCAL FAST_FORWARD FOR SELECT db, statement FROM @changes ORDER BY step;
OPEN changes;
FETCH NEXT FROM changes INTO @changeDb, @sql;
WHILE @@FETCH_STATUS = 0
BEGIN
    SET @run = N'sys.sp_executesql';
    IF @changeDb IS NOT NULL SET @run = QUOTENAME(@changeDb) + N'.sys.sp_executesql';
    EXEC @run @sql;
    FETCH NEXT FROM changes INTO @changeDb, @sql;
END;
CLOSE changes;
DEALLOCATE changes;
'@
$copyRightsSql = $collectRightsSql + "`n" + $applyRightsSql

# Alternating users' part of set: as the master login, the version's login created if missing and
# given the grants of the login AWSCURRENT names (the one applications hold, never changed here).
# When the version names that login itself (a restore), no grant is touched. Returns whether it
# created the login.
function Copy-PartnerLogin {
    Use-MasterLogin
    $current = Read-Secret $secretId '' 'AWSCURRENT' 'the AWSCURRENT version'
    $partner = Get-SecretText 'username' '' 128 $current
    if ($partner -eq $username) { return $false }
    $partnerLogins = Invoke-AdminOrFail 'SQL Server could not be administered' "SELECT COUNT(*) FROM sys.sql_logins WHERE name = @partner" $partner
    if ([int]$partnerLogins -ne 1) {
        Write-RotatorError "the SQL login '$partner' (AWSCURRENT) does not exist, so there are no grants to copy"
        exit 3
    }
    # Neither the login applications hold nor an existing login of this version may be an administrator.
    Assert-NotPrivileged $partner
    $logins = Invoke-AdminOrFail 'SQL Server could not be administered' "SELECT COUNT(*) FROM sys.server_principals WHERE name = @login"
    if ([int]$logins -ne 0) { Assert-NotPrivileged $username }
    # ... nor may either hold rights that a copy could not make equal.
    $uncopyable = [string](Invoke-AdminOrFail "the rights of '$partner' and '$username' could not be read" $checkRightsSql $partner)
    if ($uncopyable.Length -gt 0) {
        Write-RotatorError "the rights of '$partner' cannot be copied to '$username' exactly ($uncopyable): remove what stands in the way first"
        exit 3
    }
    $created = Invoke-AdminOrFail "the login '$username' could not be created" $createLoginSql $partner $true
    [void](Invoke-AdminOrFail "the login '$username' could not be given the rights of '$partner'" $copyRightsSql $partner)
    return ([int]$created -eq 1)
}

# ---- set or verify -------------------------------------------------------------------------------
$loginError = ''
$status = Test-Login
if ($action -eq 'verify') {
    Assert-LoginAccepted $status
    $outcome = 'verified'
} else {
    if ($status -ne 5) { Assert-LoginAccepted $status }
    $outcome = 'unchanged'
    if ($masterArn.Length -gt 0) {
        if (Copy-PartnerLogin) { $outcome = 'changed' }
        $status = Test-Login
    }
    if ($status -eq 5) {
        Set-LoginPassword
        $outcome = 'changed'
    } else {
        Assert-LoginAccepted $status
    }
}
[Console]::Out.WriteLine('ROTATOR-RESULT action=' + $action + ' version=' + $versionId + ' outcome=' + $outcome)
exit 0
